"""The per-request audit record: one typed object per request, written once, failing closed (DESIGN §5).

:func:`begin_request` creates a :class:`RequestAudit` before each request; a contract route
marks it with the key it names and the digest it signs; :func:`audited` writes it after the
request, and only if a key was named. Nothing else of the audit lives in Flask's ``g``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass

from flask import Response, g, request

from signserv.host.audit_log import AuditEvent, AuditLog, AuditWriteError
from signserv.tke.wire.signed_input import SignedInput

_logger = logging.getLogger(__name__)
_G_NAME = "request_audit"
AUDIT_UNAVAILABLE = json.dumps(
    {
        "error": "audit_unavailable",
        "message": "the audit log cannot be written, so the request was not completed",
    },
    separators=(",", ":"),
)


@dataclass
class RequestAudit:
    """What the current request's audit record will say, filled in as the request runs."""

    request_id: str
    started: float
    key: str | None = None
    operation: str | None = None
    input_sha512: str | None = None
    input_length: int | None = None
    signed: SignedInput | None = None
    rule: str | None = None

    def elapsed_seconds(self) -> float:
        """Seconds since the request began (monotonic)."""
        return time.perf_counter() - self.started

    def names_key(self, key_name: str, operation: str) -> None:
        """Mark the request as one to audit (called first thing in a contract route)."""
        self.key = key_name[:128]
        self.operation = operation

    def signs_input(self, sha512_digest: bytes, length: int, signed: SignedInput) -> None:
        """Note the SHA-512, length and description of the bytes asked to be signed (never
        the bytes)."""
        self.input_sha512 = sha512_digest.hex()
        self.input_length = length
        self.signed = signed

    def refused_by(self, rule: str) -> None:
        """Note the key-policy rule that refused the request."""
        self.rule = rule


def begin_request() -> RequestAudit:
    """Create the current request's record, with a fresh request id and the start time."""
    record = RequestAudit(request_id=uuid.uuid4().hex, started=time.perf_counter())
    setattr(g, _G_NAME, record)
    return record


def current_request() -> RequestAudit:
    """The current request's record, made by :func:`begin_request` before every request."""
    record: RequestAudit | None = g.get(_G_NAME)
    if record is None:
        raise RuntimeError("no audit record: begin_request did not run for this request")
    return record


def current_request_id() -> str:
    """The current request's id, or ``"?"`` when it failed before it began (for logs)."""
    record: RequestAudit | None = g.get(_G_NAME)
    return "?" if record is None else record.request_id


def _outcome(response: Response) -> str:
    if response.status_code < 400:
        return "ok"
    body = response.get_json(silent=True)
    return str(body.get("error", "error")) if isinstance(body, dict) else "error"


def audited(log: AuditLog, record: RequestAudit, response: Response) -> Response:
    """Write ``record`` if it names a key; a 503 replaces ``response`` when that write fails."""
    if record.key is None or record.operation is None:
        return response
    event = AuditEvent(
        request_id=record.request_id,
        client=request.remote_addr or "unknown",
        key=record.key,
        operation=record.operation,
        status=response.status_code,
        outcome=_outcome(response),
        input_sha512=record.input_sha512,
        input_length=record.input_length,
        signed=None if record.signed is None else record.signed.as_record(),
        rule=record.rule,
        latency_ms=round(record.elapsed_seconds() * 1000, 3),
    )
    try:
        log.append(event)
    except AuditWriteError as exc:
        _logger.error("request %s refused: %s", event.request_id, exc)
        return Response(AUDIT_UNAVAILABLE, status=503, mimetype="application/json")
    return response
