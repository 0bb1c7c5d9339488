"""What happens around every request: its audit record, metrics, headers, and JSON errors.

Errors are raised as typed exceptions and turned into the contract's JSON here, in one place;
anything unexpected is logged server-side and answered with an opaque 500 (STYLE §8).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from signserv.host.audit_log import AuditLog
from signserv.server.api_errors import APIError
from signserv.server.json_response import json_response
from signserv.server.lockout import LockedOut
from signserv.server.metrics import Metrics
from signserv.server.request_audit import (
    audited,
    begin_request,
    current_request,
    current_request_id,
)
from signserv.server.request_body import refusal_of_body
from signserv.server.signing import ColdPathBusy

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_logger = logging.getLogger(__name__)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


class CollapseLeadingSlashes:
    """Serve ``//keys/x`` as ``/keys/x``: a base URL ending in ``/`` makes the TKE client send it.

    Werkzeug would answer such a path with a redirect, which the contract forbids (§1.2).
    """

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("//"):
            environ["PATH_INFO"] = "/" + path.lstrip("/")
        return self._app(environ, start_response)


def install_request_hooks(app: Flask, metrics: Metrics, audit_log: AuditLog, tls: bool) -> None:
    """Each request's audit record, then, in this order after it: the audit write (which may
    turn the answer into a 503), the request metrics, and the headers every answer carries."""

    @app.before_request
    def start_request() -> None:
        begin_request()
        refusal = refusal_of_body(request.environ)
        if refusal is not None:
            raise refusal

    @app.after_request
    def finish_request(response: Response) -> Response:
        record = current_request()
        response = audited(audit_log, record, response)
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.requests.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        if response.status_code == 401:
            metrics.auth_failures.inc()
        if endpoint == "/sign/<name>":
            metrics.sign_latency.observe(record.elapsed_seconds())
        return _with_headers(response, record.request_id, tls)


def _with_headers(response: Response, request_id: str, tls: bool) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if tls:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    response.headers["X-Request-ID"] = request_id
    return response


def install_error_handlers(app: Flask, metrics: Metrics) -> None:
    """Typed errors to JSON; the unexpected to an opaque 500 with the traceback in the log."""

    @app.errorhandler(APIError)
    def api_error(exc: APIError) -> Response:
        return json_response(exc.status, exc.body(), exc.headers)

    @app.errorhandler(LockedOut)
    def locked_out(exc: LockedOut) -> Response:
        metrics.lockouts.inc()
        return json_response(
            429, {"error": "locked_out", "message": str(exc)}, {"Retry-After": str(exc.retry_after)}
        )

    @app.errorhandler(ColdPathBusy)
    def cold_path_busy(exc: ColdPathBusy) -> Response:
        return json_response(
            503, {"error": "busy", "message": str(exc)}, {"Retry-After": str(exc.retry_after)}
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        headers = {key: value for key, value in exc.get_headers() if key != "Content-Type"}
        return json_response(
            exc.code or 500, {"error": code, "message": exc.description or ""}, headers
        )

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> Response:
        _logger.exception("unexpected error in request %s", current_request_id())
        return json_response(500, {"error": "internal_error", "message": "internal error"})
