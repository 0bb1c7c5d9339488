"""Read each request's body whole before the application runs, under the size limit.

Done at the WSGI layer, so that (a) the worker's read deadline ends when the request has
arrived (see :mod:`signserv.server.guarded_worker`), not when a route gets round to reading, and
(b) a body that is too large (declared or chunked) or malformed in its chunked framing gets a
clear 413 or 400 instead of an opaque 500. The verdict is handed to Flask, which answers it
like any other error, audited and in JSON.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from gunicorn.http.errors import ParseException

from signserv.server.api_errors import APIError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

BODY_REFUSAL = "signserv.body_refusal"


def _too_large(limit: int) -> APIError:
    return APIError(413, "request_entity_too_large", f"the request body exceeds {limit} bytes")


class ReadBodyFirst:
    """WSGI middleware: the body becomes an in-memory stream, or a refusal for Flask to raise."""

    def __init__(
        self,
        app: WSGIApplication,
        max_bytes: int,
        arrived: Callable[[socket.socket], None] | None = None,
    ) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._arrived = arrived

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            body = self._read(environ)
        except APIError as refusal:
            environ[BODY_REFUSAL] = refusal
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
        if self._arrived is not None and "gunicorn.socket" in environ:
            self._arrived(environ["gunicorn.socket"])
        return self._app(environ, start_response)

    def _read(self, environ: WSGIEnvironment) -> bytes:
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise _too_large(self._max_bytes)
        try:
            body: bytes = environ["wsgi.input"].read(self._max_bytes + 1)
        except (ParseException, ValueError):
            raise APIError(400, "invalid_request", "the request body is malformed") from None
        if len(body) > self._max_bytes:
            raise _too_large(self._max_bytes)
        return body


def refusal_of_body(environ: WSGIEnvironment) -> APIError | None:
    """The refusal :class:`ReadBodyFirst` left for this request, if any."""
    refusal = environ.get(BODY_REFUSAL)
    return refusal if isinstance(refusal, APIError) else None
