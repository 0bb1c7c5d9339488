"""Which digest a returned ECDSA signature covers: the contract wants SHA-512 of the input, once."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterator

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from signserv.checker.errors import ContractViolation
from signserv.contract import PointNotOnCurve, PublicPoint, encode_signature


class SignedDigest(enum.Enum):
    """What a signature was found to cover, phrased for a report."""

    SHA512_ONCE = "SHA-512 of the input, hashed once"
    SHA512_TWICE = "SHA-512 of SHA-512 of the input (the service hashes twice)"
    SHA256 = "SHA-256 of the input (the service uses the wrong hash)"
    INPUT_AS_DIGEST = "the 64-byte input itself (the service treats it as a ready digest)"
    NOTHING = "SHA-512 of no bytes (the service did not read the input field)"


def verifying_key(point: PublicPoint) -> ec.EllipticCurvePublicKey:
    """The P-521 public key at ``point``, refusing a point that is not on the curve."""
    try:
        return point.verifying_key()
    except PointNotOnCurve:
        raise ContractViolation("public key (X, Y) is not a point on the P-521 curve") from None


def find_signed_digest(
    key: ec.EllipticCurvePublicKey, data: bytes, signature: tuple[int, int]
) -> SignedDigest | None:
    """The first candidate digest of ``data`` that ``signature`` verifies over, if any."""
    encoded = encode_signature(*signature)
    for candidate, digest, algorithm in _candidate_digests(data):
        try:
            key.verify(encoded, digest, ec.ECDSA(Prehashed(algorithm)))
        except InvalidSignature:
            continue
        return candidate
    return None


def require_sha512_once(
    key: ec.EllipticCurvePublicKey, data: bytes, signature: tuple[int, int]
) -> None:
    """Raise unless ``signature`` is ECDSA P-521 over SHA-512(``data``) (TKE-REFERENCE §1.7)."""
    found = find_signed_digest(key, data, signature)
    if found is SignedDigest.SHA512_ONCE:
        return
    if found is None:
        raise ContractViolation(
            f"signature over {len(data)} input bytes does not verify with ECDSA P-521 over "
            "SHA-512 of the input, nor over SHA-256, double SHA-512 or the raw input: wrong key "
            "or wrong input"
        )
    raise ContractViolation(
        f"signature over {len(data)} input bytes verifies over {found.value}, not over SHA-512 "
        "of the input hashed once; crypto units will refuse it"
    )


def _candidate_digests(data: bytes) -> Iterator[tuple[SignedDigest, bytes, hashes.HashAlgorithm]]:
    once = hashlib.sha512(data).digest()
    yield SignedDigest.SHA512_ONCE, once, hashes.SHA512()
    yield SignedDigest.SHA512_TWICE, hashlib.sha512(once).digest(), hashes.SHA512()
    yield SignedDigest.SHA256, hashlib.sha256(data).digest(), hashes.SHA256()
    if len(data) == hashes.SHA512.digest_size:
        yield SignedDigest.INPUT_AS_DIGEST, data, hashes.SHA512()
    yield SignedDigest.NOTHING, hashlib.sha512(b"").digest(), hashes.SHA512()
