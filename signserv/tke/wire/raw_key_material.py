"""The emulator's only contact with private keys: P-521 scalars, ECDSA and ECDH.

The emulator stands in for hardware, so its keys (OA keys, importer keys) live as integers in
its state file. Nothing outside this module sees a private scalar being used.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
)

from signserv.contract import PublicPoint

_CURVE = ec.SECP521R1()


def generate_private_scalar() -> int:
    """A fresh random P-521 private scalar."""
    return ec.generate_private_key(_CURVE).private_numbers().private_value


def public_point_of(private_scalar: int) -> PublicPoint:
    """The public point belonging to a private scalar."""
    return PublicPoint.of_key(ec.derive_private_key(private_scalar, _CURVE).public_key())


def sign_sha512(private_scalar: int, data: bytes) -> tuple[int, int]:
    """ECDSA P-521 over SHA-512 of ``data``: the (r, s) pair."""
    key = ec.derive_private_key(private_scalar, _CURVE)
    return decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA512())))


def ecdh_shared_secret(private_scalar: int, peer: PublicPoint) -> bytes:
    """The ECDH shared secret Z (X coordinate, 66 bytes) of a private scalar and a peer point."""
    key = ec.derive_private_key(private_scalar, _CURVE)
    return key.exchange(ec.ECDH(), peer.verifying_key())
