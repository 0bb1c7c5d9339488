"""The raw HTTP/1.1 ``POST /sign/<name>`` requests the load generators send."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

# A SHA-512 digest: what the TKE client sends for an administrator certificate.
SIGNED_INPUT = hashlib.sha512(b"signserv bench").digest()
SIGN_BODY = b'{"hash_algorithm":"sha2-512","input":"' + base64.b64encode(SIGNED_INPUT) + b'"}'


def sign_request(host: str, key_name: str, token: str, close: bool = False) -> bytes:
    """One complete ``POST /sign/<key_name>``; ``close`` has the server drop the connection after it."""
    connection = "Connection: close\r\n" if close else ""
    head = (
        f"POST /sign/{key_name} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"Authorization: {token}\r\n"
        "Content-Type: application/json\r\n"
        f"{connection}"
        f"Content-Length: {len(SIGN_BODY)}\r\n\r\n"
    )
    return head.encode("ascii") + SIGN_BODY


@dataclass(frozen=True)
class SameRequest:
    """Request source sending the same bytes every time (one key, one token)."""

    request: bytes

    def __call__(self, number: int) -> bytes:
        return self.request


@dataclass(frozen=True)
class UnknownKeyRequests:
    """Request source naming a new key that does not exist each time (``<prefix>-<number>``)."""

    host: str
    prefix: str
    token: str

    def __call__(self, number: int) -> bytes:
        return sign_request(self.host, f"{self.prefix}-{number}", self.token)
