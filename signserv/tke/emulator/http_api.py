"""The emulator behind the cloud TKE API: the two routes of TKE-REFERENCE §3.2-§3.3 over Flask.

``GET /v1/tke/<instance>/hsms`` lists the crypto units; ``POST /v1/tke/<instance>/hsms/<hsm_id>``
takes ``{"request": "<HTPRequest>"}`` and answers ``{"response": "<HTPResponse>"}``. Every
request needs ``Authorization: Bearer <access token>``. Errors are JSON in the IBM Cloud API
shape ``{"errors": [{"code", "message"}], "status_code", "trace"}``; HTP-level errors are
answered inside a 200 HTPResponse as a crypto unit would.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, request

from signserv.tke.emulator.access_control import AccessDenied, AccessPolicy, IamKeysUnavailable
from signserv.tke.emulator.service import CryptoUnitEmulator
from signserv.tke.errors import MalformedTKEMessage, UnknownCryptoUnit

MAX_REQUEST_BYTES = 1 << 20
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmulatorServerSettings:
    """One served instance: its state file, its id, and who may use it."""

    state_path: Path
    instance_id: str
    access: AccessPolicy


class ApiError(Exception):
    """An HTTP error answer: status, IBM-style error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _json(document: object, status: int = 200) -> Response:
    return Response(json.dumps(document), status=status, mimetype="application/json")


def _error_body(status: int, code: str, message: str) -> Response:
    return _json(
        {
            "errors": [{"code": code, "message": message}],
            "status_code": status,
            "trace": uuid.uuid4().hex,
        },
        status,
    )


def _htp_request_text() -> str:
    body = request.get_data(cache=False)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "bad_request", "the request body is not JSON") from None
    htp_request = document.get("request") if isinstance(document, dict) else None
    if not isinstance(htp_request, str) or not htp_request:
        raise ApiError(400, "bad_request", 'the request body must be {"request": "<HTPRequest>"}')
    return htp_request


def create_emulator_app(settings: EmulatorServerSettings) -> Flask:
    """The TKE API of one emulated service instance, its state in ``settings.state_path``."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    emulator = CryptoUnitEmulator(settings.state_path)

    def authorize(instance_id: str) -> None:
        try:
            settings.access.check(request.headers.get("Authorization"))
        except AccessDenied as denied:
            raise ApiError(401, "unauthorized", f"Unauthorized: {denied}") from None
        if instance_id != settings.instance_id:
            raise ApiError(404, "not_found", f"service instance {instance_id} was not found")

    @app.get("/v1/tke/<instance_id>/hsms")
    def list_crypto_units(instance_id: str) -> Response:
        authorize(instance_id)
        return _json(emulator.list_crypto_units())

    @app.post("/v1/tke/<instance_id>/hsms/<hsm_id>")
    def send_htp_request(instance_id: str, hsm_id: str) -> Response:
        authorize(instance_id)
        htp_request = _htp_request_text()
        try:
            htp_response = emulator.send(hsm_id, htp_request)
        except UnknownCryptoUnit:
            raise ApiError(404, "not_found", f"crypto unit {hsm_id} was not found") from None
        except MalformedTKEMessage as malformed:
            raise ApiError(400, "bad_request", f"invalid HTPRequest: {malformed}") from None
        return _json({"response": htp_response})

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _error_body(error.status, error.code, error.message)

    @app.errorhandler(IamKeysUnavailable)
    def iam_unavailable(error: IamKeysUnavailable) -> Response:
        _log.error("%s", error)
        return _error_body(503, "service_unavailable", "access tokens cannot be checked now")

    @app.errorhandler(404)
    def no_route(_error: object) -> Response:
        return _error_body(404, "not_found", "no such resource")

    @app.errorhandler(405)
    def wrong_method(_error: object) -> Response:
        return _error_body(405, "method_not_allowed", "method not allowed on this resource")

    @app.errorhandler(413)
    def too_large(_error: object) -> Response:
        return _error_body(413, "request_too_large", "the request body is too large")

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> Response:
        _log.exception("unexpected error answering a TKE API request", exc_info=error)
        return _error_body(500, "internal_error", "internal error")

    return app
