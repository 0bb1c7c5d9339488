"""HTTP to the service under test: the TKE client's exact requests, bounded in count and time.

Requests carry the headers of TKE-REFERENCE §1.3 (raw ``Authorization``, JSON content type and
accept) and are never redirected: a redirect is reported as a finding, and following one would
forward the token to wherever the service points.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from signserv.checker.errors import RunLimitReached, ServiceUnreachable
from signserv.secret import Secret
from signserv.tke_http import MAX_RESPONSE_BYTES, send_like_the_tke_client, session_for

_EXCERPT_CHARS = 160
_CONCURRENT_CONNECTIONS = 16  # robust.concurrent-signatures sends 16 at once


@dataclass(frozen=True)
class Exchange:
    """One request and what came back, kept as evidence."""

    method: str
    path: str
    status: int
    body: bytes
    location: str | None
    seconds: float

    @property
    def succeeded(self) -> bool:
        """A 2xx status, which the TKE client treats as success (§1.4)."""
        return 200 <= self.status < 300

    def describe(self) -> str:
        """``METHOD path -> status body-excerpt``, or the redirect target, for a report line."""
        if self.location is not None:
            return f"{self.method} {self.path} -> {self.status} redirect to {self.location}"
        text = self.body.decode("utf-8", errors="replace").strip()
        if len(text) > _EXCERPT_CHARS:
            text = text[:_EXCERPT_CHARS] + "..."
        return f"{self.method} {self.path} -> {self.status} {text}".rstrip()


class ServiceProbe:
    """Sends the contract's requests to one base URL, counting them against a budget."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        ca_bundle: str | None,
        max_requests: int,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._max_requests = max_requests
        self._clock = clock
        self._deadline = clock() + max_seconds
        self._lock = threading.Lock()
        self._sent = 0
        self._session = session_for("signserv-check")
        # Passed on every request, not set on the session: requests lets REQUESTS_CA_BUNDLE and
        # CURL_CA_BUNDLE override ``session.verify``, which would silently drop --ca-bundle.
        self._tls_verify: bool | str = ca_bundle if ca_bundle is not None else True
        adapter = HTTPAdapter(pool_maxsize=_CONCURRENT_CONNECTIONS)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    @property
    def requests_sent(self) -> int:
        """How many requests this probe has sent so far."""
        return self._sent

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    def get_key(
        self, name: str, token: Secret[str] | None, *, trailing_slash: bool = False
    ) -> Exchange:
        """``GET <base>/keys/<name>``; ``trailing_slash`` sends ``<base>//keys/<name>`` (§1.2)."""
        return self._send("GET", self._path("keys", name, trailing_slash), token, None)

    def post_sign(
        self, name: str, token: Secret[str] | None, body: bytes, *, trailing_slash: bool = False
    ) -> Exchange:
        """``POST <base>/sign/<name>`` with ``body`` sent byte for byte."""
        return self._send("POST", self._path("sign", name, trailing_slash), token, body)

    def _send(
        self, method: str, path: str, token: Secret[str] | None, body: bytes | None
    ) -> Exchange:
        """One request to ``base_url + path``; ``token`` None leaves out ``Authorization``."""
        self._spend_one_request()
        started = time.perf_counter()
        try:
            response = send_like_the_tke_client(
                self._session,
                method,
                self.base_url + path,
                token,
                body,
                timeout=self._timeout,
                verify=self._tls_verify,
            )
            with response:
                content = self._read_body(response)
        except requests.RequestException as exc:
            raise ServiceUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        location = response.headers.get("Location") if response.is_redirect else None
        return Exchange(
            method=method,
            path=path,
            status=response.status_code,
            body=content,
            location=location,
            seconds=time.perf_counter() - started,
        )

    def _path(self, route: str, name: str, trailing_slash: bool) -> str:
        # TKE-REFERENCE §1.2: the client concatenates, so a base URL ending in "/" gives "//".
        return ("/" if trailing_slash else "") + f"/{route}/{name}"

    def _read_body(self, response: requests.Response) -> bytes:
        """The body, cut at MAX_RESPONSE_BYTES; a slow drip past the run's deadline stops it."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=65536):
            if self._clock() > self._deadline:
                raise RunLimitReached("time budget for the run used up while reading an answer")
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_RESPONSE_BYTES:
                break
        return b"".join(chunks)[:MAX_RESPONSE_BYTES]

    def _spend_one_request(self) -> None:
        with self._lock:
            if self._sent >= self._max_requests:
                raise RunLimitReached(f"request budget of {self._max_requests} used up")
            if self._clock() > self._deadline:
                raise RunLimitReached("time budget for the run used up")
            self._sent += 1
