"""P-521 SubjectPublicKeyInfo, as in admin certificates and importer-key output (TKE-REFERENCE §2.2, §5)."""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signserv import der
from signserv.contract import P521_COORDINATE_BYTES, PublicPoint
from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire import oids

# 00 unused-bits byte, 04 marker, X and Y of 66 bytes each (§9 item 16: exactly 134 bytes).
_BIT_STRING_BYTES = 2 + 2 * P521_COORDINATE_BYTES


def encode_p521_spki(point: PublicPoint) -> bytes:
    """``SEQUENCE { SEQUENCE { ecPublicKey, secp521r1 }, BIT STRING 00 04 X Y }``.

    cryptography's SubjectPublicKeyInfo is exactly this; the point must lie on P-521.
    """
    return point.verifying_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def parse_p521_spki(encoded: bytes) -> PublicPoint:
    """The point of a P-521 SPKI whose BIT STRING holds exactly an uncompressed point."""
    try:
        outer = der.expect_tlv(encoded, der.TAG_SEQUENCE, what="SubjectPublicKeyInfo")
        algorithm, key = der.split_elements(outer.content)
    except (der.DERError, ValueError):
        raise MalformedTKEMessage("not a SubjectPublicKeyInfo") from None
    if algorithm.content != oids.EC_PUBLIC_KEY + oids.SECP521R1:
        raise MalformedTKEMessage("SubjectPublicKeyInfo is not a P-521 EC key")
    if key.tag != der.TAG_BIT_STRING:
        raise MalformedTKEMessage("SubjectPublicKeyInfo key is not a BIT STRING")
    return point_from_bit_string(key.content)


def point_from_bit_string(content: bytes) -> PublicPoint:
    """The point in a key BIT STRING's content: ``00 04 X Y``, exactly 134 bytes."""
    if len(content) != _BIT_STRING_BYTES or content[:2] != b"\x00\x04":
        raise MalformedTKEMessage("key BIT STRING is not 00 04 X Y with 66-byte coordinates")
    return PublicPoint.from_uncompressed(content[1:])
