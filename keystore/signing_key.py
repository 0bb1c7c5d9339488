"""The signing-key seam: a public point and "sign this SHA-512 digest", wherever the key lives.

:class:`SigningKey` is what the service holds and signs with. :class:`SoftwareSigningKey` keeps
the private key in this process (a ``cryptography`` object unsealed from the keystore); a key in
an HSM implements the same two members with a session object handle instead.

:class:`KeyBackend` is what a record of another kind than ``software`` needs: somewhere that
generates or takes in a private key and hands back only a wrapped blob (which the record seals
under the key's token and the master key like a software key), and later turns that blob back
into a :class:`SigningKey` without the private key ever entering this process.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class HeldKey:
    """A new key that a :class:`KeyBackend` holds: its public point and its wrapped private key."""

    public_point: bytes
    wrapped_key: bytes

    def __repr__(self) -> str:
        return f"HeldKey(public_point={self.public_point[:9].hex()}…)"


class KeyBackend(Protocol):
    """Where the private keys of one record kind live (an HSM); chosen per key at creation."""

    kind: str
    """The record kind this backend serves (stored in each of its keys' records)."""

    @property
    def location(self) -> str:
        """Where its keys live, for people (a module and token; never a credential)."""

    def check_ready(self) -> None:
        """Raise :class:`keystore.KeyBackendUnavailable` unless keys can be used right now."""

    def generate(self, record_id: bytes) -> HeldKey:
        """Generate a P-521 key inside the backend for the record ``record_id``."""

    def take(self, record_id: bytes, private_key: ec.EllipticCurvePrivateKey) -> HeldKey:
        """Bring an existing P-521 private key into the backend for the record ``record_id``."""

    def signing_key(self, record_id: bytes, wrapped_key: bytes, public_point: bytes) -> SigningKey:
        """The signing key of the record ``record_id``, from the wrapped key its seal held."""

    def destroy(self, record_id: bytes) -> None:
        """Destroy what the backend holds for ``record_id``; a no-op when nothing is left."""
