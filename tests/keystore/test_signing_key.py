"""The software signing key: the seam's public point and digest signatures."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from keystore import KeyStore, SoftwareSigningKey

from .conftest import TOKEN


@pytest.fixture(scope="module")
def signing_key() -> SoftwareSigningKey:
    return SoftwareSigningKey(ec.generate_private_key(ec.SECP521R1()))


def der_integers(signature: bytes) -> list[bytes]:
    """The contents of the two INTEGERs of a short-form DER SEQUENCE (P-521 fits in one byte)."""
    assert signature[0] == 0x30
    body = signature[3:] if signature[1] == 0x81 else signature[2:]
    integers = []
    while body:
        assert body[0] == 0x02
        length = body[1]
        integers.append(body[2 : 2 + length])
        body = body[2 + length :]
    return integers


def test_signature_over_a_sha512_digest_verifies_as_ecdsa_sha512_of_the_input(
    signing_key: SoftwareSigningKey,
) -> None:
    signature = signing_key.sign_digest(hashlib.sha512(b"payload").digest())
    signing_key.private_key.public_key().verify(signature, b"payload", ec.ECDSA(hashes.SHA512()))


def test_signature_is_der_with_minimal_integers(signing_key: SoftwareSigningKey) -> None:
    for number in range(20):
        signature = signing_key.sign_digest(hashlib.sha512(bytes([number])).digest())
        for integer in der_integers(signature):
            assert integer and not (integer[0] == 0 and len(integer) > 1 and integer[1] < 0x80)
            assert integer[0] < 0x80, "positive, so no sign bit set"


def test_a_digest_of_the_wrong_length_is_refused(signing_key: SoftwareSigningKey) -> None:
    with pytest.raises(ValueError):
        signing_key.sign_digest(hashlib.sha256(b"payload").digest())


def test_public_point_is_x962_uncompressed_with_full_width_coordinates() -> None:
    """A key whose X needs fewer than 66 bytes still gets 66 (the stored format)."""
    private_key = ec.derive_private_key(273, ec.SECP521R1())
    numbers = private_key.public_key().public_numbers()
    point = SoftwareSigningKey(private_key).public_point
    assert len(point) == 133 and point[0] == 4
    assert point[1:67] == numbers.x.to_bytes(66, "big")
    assert point[67:] == numbers.y.to_bytes(66, "big")


def test_unlocked_key_signs_for_its_stored_public_point(store: KeyStore) -> None:
    info = store.create_key("k", TOKEN)
    unlocked = store.unlock("k", TOKEN)
    assert unlocked.signing_key.public_point == info.public_point
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), info.public_point)
    signature = unlocked.signing_key.sign_digest(hashlib.sha512(b"data").digest())
    public_key.verify(signature, b"data", ec.ECDSA(hashes.SHA512()))


def test_repr_shows_no_private_material(signing_key: SoftwareSigningKey) -> None:
    scalar = signing_key.private_key.private_numbers().private_value
    assert str(scalar) not in repr(signing_key) and f"{scalar:x}" not in repr(signing_key)
