"""``create_app``: the Flask application serving the TKE signing-service contract (DESIGN §1)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from keystore import KeyDisabled, KeyNotFound, KeyStore, KeystoreError, TokenRejected
from keystore.auth_failures import AuthFailureStore
from signserv.api_errors import APIError, unauthorized
from signserv.audit import AUDIT_MAC_PURPOSE, AuditLog
from signserv.auth import token_from_authorization
from signserv.config import Settings
from signserv.contract import (
    BodyNotJSON,
    ContractError,
    b64encode,
    is_valid_key_name,
    parse_sign_request,
)
from signserv.home import open_keystore
from signserv.lockout import LockedOut, LockoutGuard
from signserv.metrics import Metrics
from signserv.openapi import openapi_document
from signserv.rate_limit import RateLimiter
from signserv.request_audit import audit_input, audit_request, install_request_audit
from signserv.signing import SigningService
from signserv.unlock_cache import UnlockCache

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_logger = logging.getLogger(__name__)
_SECURITY_HEADERS = {
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


def _json_response(
    status: int, payload: dict[str, str], headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(payload, separators=(",", ":"))
    return Response(body, status=status, mimetype="application/json", headers=headers)


def _checked_key_name(name: str) -> str:
    if not is_valid_key_name(name):
        raise APIError(
            400,
            "invalid_key_name",
            "key names are 1 to 128 RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~)",
        )
    return name


def create_app(settings: Settings, keystore: KeyStore | None = None) -> Flask:
    """Build the application; refuses (raises) when the keystore or master key is unusable."""
    app = Flask("signserv")
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_request_bytes
    store = keystore or open_keystore(settings)
    metrics = Metrics(count_keys=lambda: len(store.list_keys()))
    signing = SigningService(
        store,
        UnlockCache(settings.server.unlock_cache_seconds, settings.server.unlock_cache_size),
        LockoutGuard(AuthFailureStore(store), settings.lockout),
        metrics.record_cache_result,
    )
    audit_log = AuditLog(
        settings.audit.path, store.server_secret(AUDIT_MAC_PURPOSE), settings.audit.fsync
    )
    app.url_map.strict_slashes = False

    def refused(exc: KeystoreError) -> APIError:
        if isinstance(exc, (KeyNotFound, TokenRejected)):
            return unauthorized()
        if isinstance(exc, KeyDisabled):
            return APIError(403, "key_disabled", "this key is disabled")
        _logger.error("keystore failure: %s", exc)
        return APIError(503, "keystore_unavailable", "the keystore is unavailable")

    rate_limiter = (
        RateLimiter(settings.server.rate_limit_per_second, settings.server.rate_limit_burst)
        if settings.server.rate_limit_per_second > 0
        else None
    )

    def client_address() -> str:
        return request.remote_addr or "unknown"

    def enforce_rate_limit() -> None:
        if rate_limiter is not None:
            wait = rate_limiter.retry_after(client_address())
            if wait:
                raise APIError(
                    429,
                    "rate_limited",
                    "too many requests from this address",
                    {"Retry-After": str(wait)},
                )

    @app.get("/keys/<name>")
    def get_public_key(name: str) -> Response:
        audit_request(name, "public_key")
        enforce_rate_limit()
        key_name = _checked_key_name(name)
        token = token_from_authorization(request.headers.get("Authorization"))
        try:
            der = signing.public_key(key_name, token, client_address())
        except KeystoreError as exc:
            raise refused(exc) from None
        return _json_response(200, {"publickey": b64encode(der)})

    @app.post("/sign/<name>")
    def sign(name: str) -> Response:
        audit_request(name, "sign")
        enforce_rate_limit()
        key_name = _checked_key_name(name)
        token = token_from_authorization(request.headers.get("Authorization"))
        try:
            data = parse_sign_request(request.get_data(cache=False))
        except BodyNotJSON as exc:
            if request.mimetype not in ("", "application/json"):
                raise APIError(415, "unsupported_media_type", "the body must be JSON") from None
            raise APIError(400, "invalid_request", str(exc)) from None
        except ContractError as exc:
            raise APIError(400, "invalid_request", str(exc)) from None
        audit_input(data)
        try:
            signature = signing.sign(key_name, token, data, client_address())
        except KeystoreError as exc:
            raise refused(exc) from None
        return _json_response(200, {"signature": b64encode(signature)})

    @app.get("/healthz")
    def healthz() -> Response:
        return _json_response(200, {"status": "ok"})

    openapi_body = json.dumps(openapi_document(), separators=(",", ":"))

    @app.get("/openapi.json")
    def openapi() -> Response:
        return Response(openapi_body, mimetype="application/json")

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)

    @app.get("/readyz")
    def readyz() -> Response:
        try:
            store.check_ready()
        except KeystoreError as exc:
            _logger.error("not ready: %s", exc)
            raise APIError(
                503, "not_ready", "the keystore is not usable; see the server log"
            ) from None
        return _json_response(200, {"status": "ready"})

    @app.before_request
    def assign_request_id() -> None:
        g.request_id = uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def count_request(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.requests.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        if response.status_code == 401:
            metrics.auth_failures.inc()
        if endpoint == "/sign/<name>":
            metrics.sign_latency.observe(time.perf_counter() - g.started)
        return response

    @app.after_request
    def add_headers(response: Response) -> Response:
        response.headers.update(_SECURITY_HEADERS)
        if settings.tls.enabled:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.errorhandler(APIError)
    def api_error(exc: APIError) -> Response:
        return _json_response(exc.status, {"error": exc.code, "message": exc.message}, exc.headers)

    @app.errorhandler(LockedOut)
    def locked_out(exc: LockedOut) -> Response:
        metrics.lockouts.inc()
        return _json_response(
            429, {"error": "locked_out", "message": str(exc)}, {"Retry-After": str(exc.retry_after)}
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        headers = {key: value for key, value in exc.get_headers() if key != "Content-Type"}
        return _json_response(
            exc.code or 500, {"error": code, "message": exc.description or ""}, headers
        )

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> Response:
        _logger.exception("unexpected error in request %s", g.get("request_id", "?"))
        return _json_response(500, {"error": "internal_error", "message": "internal error"})

    install_request_audit(app, audit_log)
    app.wsgi_app = CollapseLeadingSlashes(app.wsgi_app)  # type: ignore[method-assign]
    return app
