"""Operational endpoints, apart from the contract: /healthz, /readyz, /metrics, /openapi.json."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response

from keystore import KeyStore, KeystoreError
from signserv.host.audit_log import AuditLog
from signserv.server.api_errors import APIError
from signserv.server.json_response import json_response
from signserv.server.metrics import Metrics
from signserv.server.openapi import openapi_document

_logger = logging.getLogger(__name__)


def operations_blueprint(store: KeyStore, audit_log: AuditLog, metrics: Metrics) -> Blueprint:
    """Liveness, readiness, metrics and the API description."""
    blueprint = Blueprint("operations", __name__)
    openapi_body = json.dumps(openapi_document(), separators=(",", ":"))

    @blueprint.get("/healthz")
    def healthz() -> Response:
        return json_response(200, {"status": "ok"})

    # The audit log counts: while it cannot be written, every request naming a key is a 503.
    readiness_checks = (
        (store.check_ready, "the keystore is not usable"),
        (audit_log.check_writable, "the audit log cannot be written"),
    )

    @blueprint.get("/readyz")
    def readyz() -> Response:
        for check, problem in readiness_checks:
            try:
                check()
            except KeystoreError as exc:
                _logger.error("not ready: %s", exc)
                raise APIError(503, "not_ready", f"{problem}; see the server log") from None
        return json_response(200, {"status": "ready"})

    @blueprint.get("/metrics")
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)

    @blueprint.get("/openapi.json")
    def openapi() -> Response:
        return Response(openapi_body, mimetype="application/json")

    return blueprint
