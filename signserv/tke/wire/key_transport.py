"""Wrapping a master key for another unit's importer key and unwrapping it (TKE-REFERENCE §6.5).

[EMULATOR POLICY] crypto: ephemeral P-521 ECDH, ANSI X9.63 KDF with SHA-256 over RFC 5753
ECC-CMS-SharedInfo, then AES-256 key wrap (RFC 3394) of the 32-byte key.
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from signserv import der
from signserv.contract import PublicPoint
from signserv.tke.errors import TKEError
from signserv.tke.wire import oids
from signserv.tke.wire.raw_key_material import (
    ecdh_shared_secret,
    generate_private_scalar,
    public_point_of,
)
from signserv.tke.wire.recipient_info import UKM_BYTES, RecipientInfo

KEK_BITS = 256


class KeyUnwrapFailed(TKEError, ValueError):
    """A RecipientInfo that is not for this importer key or does not unwrap."""


def _shared_info(ukm: bytes) -> bytes:
    """ECC-CMS-SharedInfo { keyInfo aes256-wrap, [0] ukm, [2] u32(256) } (RFC 5753)."""
    return der.encode_sequence(
        der.encode_sequence(oids.AES256_WRAP),
        der.encode_tlv(0xA0, der.encode_octet_string(ukm)),
        der.encode_tlv(0xA2, der.encode_octet_string(KEK_BITS.to_bytes(4, "big"))),
    )


def _key_encryption_key(shared_secret: bytes, ukm: bytes) -> bytes:
    """ANSI X9.63 KDF with SHA-256 over the shared info: the 32 bytes of an AES-256 KEK."""
    kdf = X963KDF(algorithm=hashes.SHA256(), length=KEK_BITS // 8, sharedinfo=_shared_info(ukm))
    return kdf.derive(shared_secret)


def wrap_key_for(importer: PublicPoint, key: bytes) -> RecipientInfo:
    """A RecipientInfo only the holder of ``importer``'s private key can open."""
    ephemeral = generate_private_scalar()
    ukm = secrets.token_bytes(UKM_BYTES)
    kek = _key_encryption_key(ecdh_shared_secret(ephemeral, importer), ukm)
    return RecipientInfo(
        originator=public_point_of(ephemeral),
        ukm=ukm,
        recipient_ski=importer.ski(),
        encrypted_key=aes_key_wrap(kek, key),
    )


def unwrap_key(importer_key: int, recipient_info: RecipientInfo) -> bytes:
    """The key inside a RecipientInfo addressed to ``importer_key``."""
    if recipient_info.recipient_ski != public_point_of(importer_key).ski():
        raise KeyUnwrapFailed("the key part is wrapped for another importer key")
    try:
        shared_secret = ecdh_shared_secret(importer_key, recipient_info.originator)
        kek = _key_encryption_key(shared_secret, recipient_info.ukm)
        return aes_key_unwrap(kek, recipient_info.encrypted_key)
    except (ValueError, InvalidUnwrap):
        raise KeyUnwrapFailed("the key part does not unwrap with this importer key") from None
