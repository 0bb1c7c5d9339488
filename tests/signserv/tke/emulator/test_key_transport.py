"""Master-key wrapping between units: ECDH, X9.63 KDF, AES key wrap (TKE-REFERENCE §6.5)."""

from __future__ import annotations

import dataclasses
import secrets

import pytest

from signserv.tke.wire.key_transport import KeyUnwrapFailed, unwrap_key, wrap_key_for
from signserv.tke.wire.raw_key_material import generate_private_scalar, public_point_of
from signserv.tke.wire.recipient_info import parse_recipient_info


def test_wrapped_key_opens_with_the_importer_key() -> None:
    """A 32-byte key comes back; the encrypted key is 40 bytes and the SKI names the importer."""
    importer = generate_private_scalar()
    key = secrets.token_bytes(32)
    recipient_info = parse_recipient_info(wrap_key_for(public_point_of(importer), key).encode())
    assert len(recipient_info.encrypted_key) == 40 and len(recipient_info.ukm) == 40
    assert recipient_info.recipient_ski == public_point_of(importer).ski()
    assert unwrap_key(importer, recipient_info) == key


def test_key_wrapped_for_another_importer_is_refused() -> None:
    """The SKI check stops a part meant for another unit."""
    recipient_info = wrap_key_for(public_point_of(generate_private_scalar()), bytes(32))
    with pytest.raises(KeyUnwrapFailed, match="another importer"):
        unwrap_key(generate_private_scalar(), recipient_info)


def test_tampered_ukm_does_not_unwrap() -> None:
    """The KDF binds the user keying material: a changed ukm fails the key-wrap integrity check."""
    importer = generate_private_scalar()
    recipient_info = wrap_key_for(public_point_of(importer), bytes(32))
    tampered = dataclasses.replace(recipient_info, ukm=bytes(40))
    with pytest.raises(KeyUnwrapFailed, match="does not unwrap"):
        unwrap_key(importer, tampered)
