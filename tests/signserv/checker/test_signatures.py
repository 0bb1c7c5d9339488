"""Telling which digest a signature covers, so a report can name the service's hashing mistake."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from signserv.checker.errors import ContractViolation
from signserv.checker.signatures import (
    SignedDigest,
    find_signed_digest,
    require_sha512_once,
    verifying_key,
)
from signserv.contract import PublicPoint

KEY = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP521R1())
DIGEST_INPUT = hashlib.sha512(b"a TBSCertificate").digest()

Signer = Callable[[bytes], bytes]


def over_sha512(data: bytes) -> bytes:
    """What the contract wants."""
    return KEY.sign(data, ec.ECDSA(hashes.SHA512()))


def over_double_sha512(data: bytes) -> bytes:
    """A service that hashes before handing the bytes to a hashing signer."""
    return KEY.sign(hashlib.sha512(data).digest(), ec.ECDSA(hashes.SHA512()))


def over_sha256(data: bytes) -> bytes:
    """A service on the wrong hash."""
    return KEY.sign(data, ec.ECDSA(hashes.SHA256()))


def over_input_as_digest(data: bytes) -> bytes:
    """A service that "detects" a 64-byte input as a ready digest and signs it as is."""
    return KEY.sign(data, ec.ECDSA(Prehashed(hashes.SHA512())))


def over_nothing(data: bytes) -> bytes:
    """A service that read no input field and signed empty bytes."""
    return KEY.sign(b"", ec.ECDSA(hashes.SHA512()))


@pytest.mark.parametrize(
    ("signer", "expected"),
    [
        (over_sha512, SignedDigest.SHA512_ONCE),
        (over_double_sha512, SignedDigest.SHA512_TWICE),
        (over_sha256, SignedDigest.SHA256),
        (over_input_as_digest, SignedDigest.INPUT_AS_DIGEST),
        (over_nothing, SignedDigest.NOTHING),
    ],
)
def test_the_signed_digest_is_named(signer: Signer, expected: SignedDigest) -> None:
    signature = decode_dss_signature(signer(DIGEST_INPUT))
    assert find_signed_digest(KEY.public_key(), DIGEST_INPUT, signature) is expected


def test_only_sha512_once_is_accepted() -> None:
    signature = decode_dss_signature(over_input_as_digest(DIGEST_INPUT))
    with pytest.raises(ContractViolation, match="treats it as a ready digest"):
        require_sha512_once(KEY.public_key(), DIGEST_INPUT, signature)


def test_a_signature_by_another_key_matches_nothing() -> None:
    other = ec.generate_private_key(ec.SECP521R1())
    signature = decode_dss_signature(other.sign(b"data", ec.ECDSA(hashes.SHA512())))
    with pytest.raises(ContractViolation, match="wrong key or wrong input"):
        require_sha512_once(KEY.public_key(), b"data", signature)


def test_a_point_off_the_curve_is_refused() -> None:
    numbers = KEY.public_key().public_numbers()
    with pytest.raises(ContractViolation, match="not a point on the P-521 curve"):
        verifying_key(PublicPoint(x=numbers.x, y=numbers.y + 1))
