"""Who may use the emulator's TKE API: ``Authorization: Bearer <token>`` checked as IAM would be.

Either one fixed token (from a file), or IAM access tokens: RS256 JWTs whose signature is
checked with the keys IAM publishes at ``<iam>/identity/keys`` and whose ``exp`` has not
passed, as the cloud TKE API accepts the tokens IAM issues (TKE-REFERENCE §3.9a).

The keys are fetched again for a key id not seen before, but at most once per
:data:`KEYS_REFETCH_SECONDS`: a stream of tokens with made-up key ids must not turn the
emulator into a flood of requests to IAM. A published key that cannot be used refuses the
tokens it signed (401), and does not spoil the other keys.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Protocol

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from signserv.secret import Secret
from signserv.tke.errors import TKEError

IAM_KEYS_ROUTE = "/identity/keys"
KEYS_TIMEOUT_SECONDS = 10.0
KEYS_REFETCH_SECONDS = 30.0
MIN_RSA_KEY_BITS = 2048


class AccessDenied(TKEError):
    """A request without a valid access token; the message says why, never the token."""


class AccessPolicy(Protocol):
    """Decides whether an ``Authorization`` header value may use the emulator."""

    def check(self, authorization: str | None) -> None:
        """Return if the header carries a valid access token; raise :class:`AccessDenied`."""
        ...


def _bearer_credential(authorization: str | None) -> str:
    if not authorization:
        raise AccessDenied("the Authorization header is missing")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise AccessDenied("the Authorization header is not 'Bearer <access token>'")
    return credential.strip()


class FixedAccessToken:
    """Accept exactly one token, compared in constant time."""

    def __init__(self, token: Secret[str]) -> None:
        self._token = token

    def check(self, authorization: str | None) -> None:
        credential = _bearer_credential(authorization)
        if not hmac.compare_digest(credential.encode(), self._token.reveal().encode()):
            raise AccessDenied("the access token is not valid")


def _base64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AccessDenied("the access token is not a JWT") from None


def _json_part(text: str) -> dict[str, object]:
    try:
        document = json.loads(_base64url(text))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AccessDenied("the access token is not a JWT") from None
    if not isinstance(document, dict):
        raise AccessDenied("the access token is not a JWT")
    return document


class _UnusableKey(Exception):
    """A published JWK that cannot verify anything; the message says why."""


def _key_number(jwk: dict[str, object], member: str) -> int:
    text = jwk.get(member)
    if not isinstance(text, str) or not text:
        raise _UnusableKey(f"its {member!r} is missing")
    try:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")
    except (binascii.Error, ValueError):
        raise _UnusableKey(f"its {member!r} is not base64url") from None


def _rsa_key(jwk: dict[str, object]) -> rsa.RSAPublicKey:
    """The RSA public key of a JWK, or :class:`_UnusableKey` saying why there is none."""
    if jwk.get("kty") != "RSA":
        raise _UnusableKey("it is not an RSA key")
    numbers = rsa.RSAPublicNumbers(_key_number(jwk, "e"), _key_number(jwk, "n"))
    try:
        key = numbers.public_key()
    except ValueError:
        raise _UnusableKey("it is not a valid RSA public key") from None
    if key.key_size < MIN_RSA_KEY_BITS:
        raise _UnusableKey(f"it is shorter than {MIN_RSA_KEY_BITS} bits")
    return key


class IamAccessTokens:
    """Accept unexpired RS256 JWTs signed by a key IAM publishes.

    The keys are fetched on first use and again for a new key id, at most once per
    :data:`KEYS_REFETCH_SECONDS`.
    """

    def __init__(self, iam_endpoint: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.keys_url = iam_endpoint.rstrip("/") + IAM_KEYS_ROUTE
        self._clock = clock
        # kid -> its key, or why IAM's JWK for it cannot be used.
        self._keys: dict[str, rsa.RSAPublicKey | _UnusableKey] = {}
        self._fetched_at: float | None = None
        self._fetch_failure: str | None = None
        self._lock = threading.Lock()

    def check(self, authorization: str | None) -> None:
        parts = _bearer_credential(authorization).split(".")
        if len(parts) != 3:
            raise AccessDenied("the access token is not a JWT")
        header, claims = _json_part(parts[0]), _json_part(parts[1])
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise AccessDenied("the access token is not an RS256 JWT with a key id")
        key = self._key(str(header["kid"]))
        try:
            key.verify(
                _base64url(parts[2]),
                f"{parts[0]}.{parts[1]}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, UnicodeEncodeError):
            raise AccessDenied("the access token's signature is not valid") from None
        expiry = claims.get("exp")
        if not isinstance(expiry, int | float) or isinstance(expiry, bool):
            raise AccessDenied("the access token has no expiry")
        if time.time() >= expiry:
            raise AccessDenied("the access token has expired")

    def _key(self, kid: str) -> rsa.RSAPublicKey:
        with self._lock:
            if kid not in self._keys and self._may_fetch():
                self._fetched_at = self._clock()
                try:
                    self._keys = self._fetch_keys()
                    self._fetch_failure = None
                except IamKeysUnavailable as failure:
                    self._fetch_failure = str(failure)
            key = self._keys.get(kid)
            if key is None and self._fetch_failure is not None:
                # Without IAM's keys no token can be judged: that is our problem, not a 401.
                raise IamKeysUnavailable(self._fetch_failure)
        if key is None:
            raise AccessDenied("the access token was signed by a key IAM does not publish")
        if isinstance(key, _UnusableKey):
            raise AccessDenied(
                f"the access token was signed by a key IAM publishes in a form that cannot be "
                f"used ({key}); ask the IAM operator to fix its published keys"
            )
        return key

    def _may_fetch(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= KEYS_REFETCH_SECONDS

    def _fetch_keys(self) -> dict[str, rsa.RSAPublicKey | _UnusableKey]:
        try:
            response = requests.get(
                self.keys_url, timeout=KEYS_TIMEOUT_SECONDS, allow_redirects=False
            )
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise IamKeysUnavailable(
                f"cannot read IAM keys at {self.keys_url}: {type(exc).__name__}"
            ) from None
        keys: dict[str, rsa.RSAPublicKey | _UnusableKey] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            try:
                keys[jwk["kid"]] = _rsa_key(jwk)
            except _UnusableKey as unusable:
                keys[jwk["kid"]] = unusable
        return keys


class IamKeysUnavailable(TKEError):
    """The emulator cannot read IAM's published keys, so it cannot check any access token."""
