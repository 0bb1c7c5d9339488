"""A local IBM Cloud IAM for tests: the API-key grant and the keys its tokens verify with.

``POST /identity/token`` takes ``grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=...``
(form-encoded) and answers IAM's JSON (``access_token``, ``token_type``, ``expires_in``,
``expiration``); an unknown key gets IAM's 400 ``errorCode``/``errorMessage`` body. Access
tokens are RS256 JWTs with ``exp``; ``GET /identity/keys`` publishes the verification key
(and any ``extra_jwks`` a test adds, broken ones included) and counts how often it was read.
A real HTTP server on 127.0.0.1, stopped by whoever started it.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

API_KEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class IamTokenServer:
    """Issues access tokens for the API keys it knows; counts the exchanges it answered."""

    def __init__(self, api_keys: set[str], token_lifetime_seconds: int = 3600) -> None:
        self.api_keys = set(api_keys)
        self.token_lifetime_seconds = token_lifetime_seconds
        self.exchanges = 0
        self.key_fetches = 0
        self.extra_jwks: list[dict[str, Any]] = []
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(4)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> IamTokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def issue_token(self, lifetime_seconds: int, *, kid: str | None = None) -> str:
        """An access token valid for ``lifetime_seconds`` from now (negative: already expired).

        ``kid`` names another key id in the header (the signature stays this server's).
        """
        header = {"alg": "RS256", "kid": kid or self._kid, "typ": "JWT"}
        now = int(time.time())
        claims = {"iss": self.url, "iat": now, "exp": now + lifetime_seconds, "sub": "test"}
        signed = ".".join(_base64url(json.dumps(part).encode()) for part in (header, claims))
        signature = self._signing_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{_base64url(signature)}"

    def _published_keys(self) -> dict[str, Any]:
        numbers = self._signing_key.public_key().public_numbers()

        def encoded(value: int) -> str:
            return _base64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        key = {"kty": "RSA", "alg": "RS256", "kid": self._kid, "n": encoded(numbers.n)}
        return {"keys": [{**key, "e": encoded(numbers.e)}, *self.extra_jwks]}

    def _token_answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != [API_KEY_GRANT]:
            return 400, {"errorCode": "BXNIM0103E", "errorMessage": "grant_type is not supported"}
        if form.get("apikey", [""])[0] not in self.api_keys:
            return 400, {
                "errorCode": "BXNIM0415E",
                "errorMessage": "Provided API key could not be found.",
            }
        self.exchanges += 1
        lifetime = self.token_lifetime_seconds
        return 200, {
            "access_token": self.issue_token(lifetime),
            "refresh_token": "not-supported",
            "token_type": "Bearer",
            "expires_in": lifetime,
            "expiration": int(time.time()) + lifetime,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        iam = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                if self.path != "/identity/token":
                    self._answer(404, {"errorMessage": "not found"})
                elif self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                    self._answer(400, {"errorCode": "BXNIM0109E", "errorMessage": "bad content"})
                else:
                    self._answer(*iam._token_answer(form))

            def do_GET(self) -> None:
                if self.path == "/identity/keys":
                    iam.key_fetches += 1
                    self._answer(200, iam._published_keys())
                else:
                    self._answer(404, {"errorMessage": "not found"})

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: request lines would carry nothing useful to a test run."""

        return Handler
