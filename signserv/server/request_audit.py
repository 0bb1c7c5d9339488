"""Writing one audit record per request that names a key, failing closed (DESIGN §5)."""

from __future__ import annotations

import json
import logging
import time

from flask import Flask, Response, g, request

from signserv.host.audit_log import AuditEvent, AuditLog, AuditWriteError

_logger = logging.getLogger(__name__)
AUDIT_UNAVAILABLE = json.dumps(
    {
        "error": "audit_unavailable",
        "message": "the audit log cannot be written, so the request was not completed",
    },
    separators=(",", ":"),
)


def audit_request(key_name: str, operation: str) -> None:
    """Mark the current request as one to audit (called first thing in a contract route)."""
    g.audit_key = key_name[:128]
    g.audit_operation = operation


def audit_input(sha512_digest: bytes, length: int) -> None:
    """Note the SHA-512 and length of the bytes asked to be signed (never the bytes)."""
    g.audit_input_sha512 = sha512_digest.hex()
    g.audit_input_length = length


def _outcome(response: Response) -> str:
    if response.status_code < 400:
        return "ok"
    body = response.get_json(silent=True)
    return str(body.get("error", "error")) if isinstance(body, dict) else "error"


def install_request_audit(app: Flask, log: AuditLog) -> None:
    """Register the hook; call after every other after_request hook so it runs first.

    The request's start time is ``g.started``, set by the app before each request.
    """

    @app.after_request
    def write_audit_record(response: Response) -> Response:
        if "audit_key" not in g:
            return response
        event = AuditEvent(
            request_id=g.get("request_id", ""),
            client=request.remote_addr or "unknown",
            key=g.audit_key,
            operation=g.audit_operation,
            status=response.status_code,
            outcome=_outcome(response),
            input_sha512=g.get("audit_input_sha512"),
            input_length=g.get("audit_input_length"),
            latency_ms=round((time.perf_counter() - g.started) * 1000, 3),
        )
        try:
            log.append(event)
        except AuditWriteError as exc:
            _logger.error("request %s refused: %s", event.request_id, exc)
            return Response(AUDIT_UNAVAILABLE, status=503, mimetype="application/json")
        return response
