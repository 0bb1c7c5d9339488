"""The signing-key seam: a public point and "sign this SHA-512 digest", wherever the key lives.

:class:`SigningKey` is what the service holds and signs with. :class:`SoftwareSigningKey` keeps
the private key in this process (a ``cryptography`` object unsealed from the keystore); a key in
an HSM implements the same two members with a session object handle instead.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class SigningKey(Protocol):
    """A P-521 key that signs digests; its private half need not be in this process."""

    @property
    def public_point(self) -> bytes:
        """The public key as an X9.62 uncompressed point (``04 || X || Y``, 133 bytes)."""

    def sign_digest(self, sha512_digest: bytes) -> bytes:
        """A DER ECDSA signature ``SEQUENCE{r, s}`` over ``sha512_digest`` (not hashed again)."""


def uncompressed_point(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """``04 || X || Y`` of ``public_key``, each coordinate the curve's full width."""
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


class SoftwareSigningKey:
    """A :class:`SigningKey` whose private key is a ``cryptography`` object in this process."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private_key = private_key
        self._public_point = uncompressed_point(private_key.public_key())

    @property
    def public_point(self) -> bytes:
        return self._public_point

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """The key itself, for code that stores or compares software keys (never the service)."""
        return self._private_key

    def sign_digest(self, sha512_digest: bytes) -> bytes:
        return self._private_key.sign(sha512_digest, ec.ECDSA(Prehashed(hashes.SHA512())))

    def __repr__(self) -> str:
        return f"SoftwareSigningKey(public_point={self._public_point[:9].hex()}…)"
