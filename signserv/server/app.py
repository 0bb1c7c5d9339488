"""``create_app``: the Flask application serving the TKE signing-service contract (DESIGN §1).

It wires the parts together; each lives in its own module: the contract routes, the
operational endpoints, the request hooks and error handlers, and the request audit.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from flask import Flask

from keystore import KeyStore
from signserv.host.audit_log import AUDIT_MAC_PURPOSE, AuditLog
from signserv.host.config import Settings
from signserv.host.home import open_audit_chain, open_failure_counters, open_keystore
from signserv.server.contract_routes import contract_blueprint
from signserv.server.lockout import LockoutGuard
from signserv.server.metrics import Metrics
from signserv.server.operations_routes import operations_blueprint
from signserv.server.rate_limit import RateLimiter
from signserv.server.request_body import ReadBodyFirst
from signserv.server.request_hooks import (
    CollapseLeadingSlashes,
    install_error_handlers,
    install_request_hooks,
)
from signserv.server.signing import SigningService
from signserv.server.unlock_cache import UnlockCache


def create_app(
    settings: Settings,
    keystore: KeyStore | None = None,
    request_arrived: Callable[[socket.socket], None] | None = None,
) -> Flask:
    """Build the application; refuses (raises) when the keystore or master key is unusable.

    ``request_arrived`` is told each request's connection once its body is read (the worker's
    read deadline then ends).
    """
    app = Flask("signserv")
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_request_bytes
    app.url_map.strict_slashes = False
    # An inner "//" would otherwise get a 308 redirect with an HTML body: a JSON 404 instead.
    app.url_map.merge_slashes = False
    store = keystore or open_keystore(settings)
    metrics = Metrics(count_keys=store.count_keys)
    signing = SigningService(
        store,
        UnlockCache(settings.server.unlock_cache_seconds, settings.server.unlock_cache_size),
        LockoutGuard(open_failure_counters(settings), settings.lockout),
        metrics.record_cache_result,
        settings.server.cold_request_slots,
    )
    server = settings.server
    rate_limiter = (
        RateLimiter(server.rate_limit_per_second, server.rate_limit_burst)
        if server.rate_limit_per_second > 0
        else None
    )
    audit_log = AuditLog(open_audit_chain(settings, store.server_secret(AUDIT_MAC_PURPOSE)))
    app.register_blueprint(contract_blueprint(signing, rate_limiter))
    app.register_blueprint(operations_blueprint(store, audit_log, metrics))
    install_request_hooks(app, metrics, audit_log, tls=settings.tls.enabled)
    install_error_handlers(app, metrics)
    app.wsgi_app = CollapseLeadingSlashes(  # type: ignore[method-assign]
        ReadBodyFirst(app.wsgi_app, server.max_request_bytes, request_arrived)
    )
    return app
