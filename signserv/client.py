"""The client half of the signing-service contract: SIGNSERVKEYS and ``SigningServiceClient``.

Requests are byte-for-byte what the TKE client sends (TKE-REFERENCE §1.3) and responses are
parsed as leniently as the Go client parses them (§1.4), then checked more strictly than Go
does: the public key must be a point on P-521 and every signature must verify before it is
returned (§9 item 28: the SDK leaves that to the crypto unit).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from signserv import contract
from signserv.errors import SignservError
from signserv.secret import MASK, Secret
from signserv.tke_http import MAX_RESPONSE_BYTES, send_like_the_tke_client, session_for

SIGNSERVKEYS_FILENAME = "SIGNSERVKEYS"
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_MESSAGE_BODY_CHARS = 2000

_ENTRY_MEMBERS = ("key", "token")


class ClientError(SignservError):
    """Base of the errors raised by the signing-service client and the SIGNSERVKEYS loader."""


class SignservKeysError(ClientError, ValueError):
    """SIGNSERVKEYS is missing or malformed; the message names the entry and the problem."""


class TokenUnavailable(ClientError):
    """A SIGNSERVKEYS entry has no token and there is no terminal to ask for it."""


class InvalidServiceURL(ClientError, ValueError):
    """The signing-service base URL is not an http(s) URL."""


class UnusableKeyName(ClientError, ValueError):
    """A key name the contract forbids (TKE-REFERENCE §1.2); refused before any request."""


class SigningServiceUnreachable(ClientError):
    """The request did not complete: connection refused, DNS, TLS or timeout."""


class SigningServiceRedirected(ClientError):
    """The service answered with a redirect, which is never followed with a token attached."""


class SigningServiceRefused(ClientError):
    """The service answered with a non-2xx status; ``status`` and the body, token masked, are kept."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class InvalidServiceResponse(ClientError):
    """A 2xx answer whose body is not the contract's JSON (empty, not JSON, member missing)."""


class InvalidPublicKey(InvalidServiceResponse):
    """The service's public key is not DER SEQUENCE{X,Y} of a P-521 point in standard base64."""


class InvalidServiceSignature(InvalidServiceResponse):
    """The service's signature is not a DER SEQUENCE{R,S} in standard base64."""


class SignatureDoesNotVerify(InvalidServiceSignature):
    """A well-formed signature that does not verify with the key's public key over the data."""


# --- SIGNSERVKEYS -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignServKey:
    """One SIGNSERVKEYS entry: a key name and its token, or ``None`` when it must be asked for."""

    key: str
    token: Secret[str] | None


class _Members(list[tuple[str, Any]]):
    """A JSON object's members in file order, so duplicates can be reported per entry."""


def _entry_problem(index: int, problem: str) -> SignservKeysError:
    return SignservKeysError(f"{SIGNSERVKEYS_FILENAME} entry {index}: {problem}")


def _parse_entry(index: int, value: object) -> SignServKey:
    if not isinstance(value, _Members):
        raise _entry_problem(index, 'must be a JSON object like {"key": "name"}')
    names = [name for name, _ in value]
    for name in names:
        if names.count(name) > 1:
            raise _entry_problem(index, f"member {name!r} appears more than once")
        if name not in _ENTRY_MEMBERS:
            raise _entry_problem(index, f"unknown member {name!r} (allowed: key, token)")
    members = dict(value)
    key = members.get("key")
    if key is None:
        raise _entry_problem(index, '"key" is required')
    if not isinstance(key, str):
        raise _entry_problem(index, '"key" must be a string')
    try:
        contract.require_key_name(key)
    except contract.InvalidKeyName as exc:
        raise _entry_problem(index, f"key {key!r}: {exc}") from None
    if "token" not in members:
        return SignServKey(key=key, token=None)
    token = members["token"]
    if not isinstance(token, str):
        raise _entry_problem(index, '"token" must be a string')
    if not token:
        raise _entry_problem(index, '"token" must not be empty (leave it out to be asked for it)')
    return SignServKey(key=key, token=Secret(token))


def load_signservkeys(directory: str | os.PathLike[str]) -> list[SignServKey]:
    """Read ``<directory>/SIGNSERVKEYS``; tokens left out are asked for by ``resolve_token``."""
    path = Path(directory) / SIGNSERVKEYS_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SignservKeysError(
            f'{path} does not exist: create it with a JSON array such as [{{"key": "admin1"}}]'
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SignservKeysError(f"{path} cannot be read: {exc}") from None
    try:
        document = json.loads(text, object_pairs_hook=_Members)
    except json.JSONDecodeError as exc:
        raise SignservKeysError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(document, list) or isinstance(document, _Members):
        raise SignservKeysError(f'{path} must hold a JSON array of {{"key", "token"}} objects')
    entries: list[SignServKey] = []
    for index, value in enumerate(document):
        entry = _parse_entry(index, value)
        for earlier_index, earlier in enumerate(entries):
            if earlier.key == entry.key:
                raise _entry_problem(
                    index, f"key {entry.key!r} is already listed in entry {earlier_index}"
                )
        entries.append(entry)
    return entries


def resolve_token(
    entry: SignServKey,
    *,
    interactive: bool | None = None,
    ask: Callable[[str], str] = getpass.getpass,
) -> Secret[str]:
    """The entry's token, or one asked for without echo; ``interactive`` defaults to stdin.isatty()."""
    if entry.token is not None:
        return entry.token
    if not (sys.stdin.isatty() if interactive is None else interactive):
        raise TokenUnavailable(
            f"{SIGNSERVKEYS_FILENAME} has no token for key {entry.key!r} and stdin is not a "
            'terminal to ask for it: add "token" to the entry or run interactively'
        )
    token = ask(f"Token for signature key {entry.key}: ")
    if not token:
        raise TokenUnavailable(f"no token entered for key {entry.key!r}")
    return Secret(token)


# --- the HTTP client ----------------------------------------------------------------------------


def _require_http_url(base_url: str) -> str:
    try:
        parts = urlsplit(base_url)
    except ValueError:
        raise InvalidServiceURL("the signing-service URL cannot be parsed") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidServiceURL(
            f"signing-service URL {base_url!r} must look like https://host:port or http://host:port"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidServiceURL(
            "the signing-service URL must not carry credentials: tokens belong in SIGNSERVKEYS"
        )
    return base_url


def _require_key_name(name: str) -> str:
    try:
        return contract.require_key_name(name)
    except contract.InvalidKeyName as exc:
        raise UnusableKeyName(f"key name {name!r}: {exc}") from None


def _shorten(text: str) -> str:
    if len(text) <= MAX_MESSAGE_BODY_CHARS:
        return text
    return (
        f"{text[:MAX_MESSAGE_BODY_CHARS]}... ({len(text) - MAX_MESSAGE_BODY_CHARS} more characters)"
    )


def _without_token(text: str, token: Secret[str]) -> str:
    """``text`` with the token masked, as sent and as the credential after a ``Bearer `` prefix.

    A service or proxy may echo the Authorization header, whole or with its scheme stripped.
    """
    sent = token.reveal()
    scheme, _, credential = sent.strip().partition(" ")
    forms = {sent.strip(), credential.strip() if scheme.lower() == "bearer" else ""}
    for form in sorted(forms - {""}, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def _string_member(body: bytes, member: str, *, what: str) -> str:
    try:
        return contract.read_answer_member(body, member)
    except contract.UnusableAnswer as exc:
        raise InvalidServiceResponse(f"{what}: {exc}") from None


def _decode_base64_member(value: str, *, member: str, what: str) -> bytes:
    try:
        return contract.b64decode_strict(value, what=member)
    except contract.NonStandardBase64 as exc:
        error = InvalidPublicKey if member == "publickey" else InvalidServiceSignature
        raise error(f"{what}: {exc} (URL-safe, unpadded or wrapped base64 is refused)") from None


def _decode_service_signature(encoded: bytes, *, what: str) -> tuple[int, int]:
    if len(encoded) == contract.RAW_SIGNATURE_BYTES and encoded[:1] != b"\x30":
        raise InvalidServiceSignature(
            f"{what}: the signature is {contract.RAW_SIGNATURE_BYTES} raw bytes (r||s), "
            "not DER SEQUENCE{INTEGER R, INTEGER S}"
        )
    try:
        return contract.decode_signature(encoded)
    except contract.MalformedSignature as exc:
        raise InvalidServiceSignature(f"{what}: {exc}") from None


class SigningServiceClient:
    """Talks to one signing service; verifies every public key and signature it receives."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        ca_bundle: str | os.PathLike[str] | None = None,
    ) -> None:
        self.base_url = _require_http_url(base_url)
        self.timeout = timeout
        self._session = session_for("signserv-client")
        # Passed on every request: a session-level setting would lose to REQUESTS_CA_BUNDLE.
        self._tls_verify: bool | str = True if ca_bundle is None else os.fspath(ca_bundle)
        self._public_keys: dict[str, contract.PublicPoint] = {}

    def __enter__(self) -> SigningServiceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP connections."""
        self._session.close()

    def public_key(self, name: str, token: Secret[str]) -> contract.PublicPoint:
        """GET /keys/<name>: the key's P-521 point, checked to lie on the curve."""
        what = f"public key of {_require_key_name(name)!r}"
        body = self._exchange("GET", f"/keys/{name}", token, None, what=what)
        encoded = _decode_base64_member(
            _string_member(body, "publickey", what=what), member="publickey", what=what
        )
        try:
            point = contract.decode_public_key(encoded)
            point.verifying_key()
        except contract.MalformedPublicKey as exc:
            raise InvalidPublicKey(f"{what}: {exc}") from None
        self._public_keys[name] = point
        return point

    def sign(self, name: str, token: Secret[str], data: bytes) -> bytes:
        """POST /sign/<name>: the DER signature over SHA-512(data), verified before returning."""
        what = f"signature by {_require_key_name(name)!r}"
        point = self._public_keys.get(name) or self.public_key(name, token)
        body = self._exchange(
            "POST", f"/sign/{name}", token, contract.build_sign_request_body(data), what=what
        )
        signature = _decode_base64_member(
            _string_member(body, "signature", what=what), member="signature", what=what
        )
        r, s = _decode_service_signature(signature, what=what)
        try:
            point.verify_sha512((r, s), data)
        except contract.SignatureMismatch as exc:
            raise SignatureDoesNotVerify(f"{what}: {exc}") from None
        return signature

    def _exchange(
        self, method: str, path: str, token: Secret[str], body: bytes | None, *, what: str
    ) -> bytes:
        """Send one request exactly as §1.3 lays it out and return a 2xx body."""
        url = self.base_url + path
        try:
            with send_like_the_tke_client(
                self._session,
                method,
                url,
                token,
                body,
                timeout=self.timeout,
                verify=self._tls_verify,
            ) as response:
                content = self._read_limited(response, what=what)
        except requests.RequestException as exc:
            raise SigningServiceUnreachable(
                f"{what}: {method} {url} failed: {type(exc).__name__}: is the signing service "
                f"running at {self.base_url}? Check the host and port, http vs https, and "
                "for https the CA bundle (--ca-bundle)"
            ) from None
        if 300 <= response.status_code < 400:
            location = _without_token(
                response.headers.get("Location", "(no Location header)"), token
            )
            raise SigningServiceRedirected(
                f"{what}: {method} {url} answered {response.status_code} redirecting to "
                f"{location}; redirects are not followed with a token: use the final URL"
            )
        if not 200 <= response.status_code < 300:
            text = _without_token(content.decode("utf-8", errors="replace"), token)
            raise SigningServiceRefused(
                f"{what}: {method} {url} answered status {response.status_code}\n"
                f"Message: {_shorten(text)}",
                response.status_code,
                text,
            )
        return content

    @staticmethod
    def _read_limited(response: requests.Response, *, what: str) -> bytes:
        chunks: list[bytes] = []
        received = 0
        for chunk in response.iter_content(chunk_size=65536):
            received += len(chunk)
            if received > MAX_RESPONSE_BYTES:
                raise InvalidServiceResponse(
                    f"{what}: response body over {MAX_RESPONSE_BYTES} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)
