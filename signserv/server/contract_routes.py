"""The contract's two routes: GET /keys/<name> and POST /sign/<name> (DESIGN §1)."""

from __future__ import annotations

import hashlib
import logging
import ssl

from flask import Blueprint, Response, request

from keystore import KeyDisabled, KeyNotFound, KeystoreError, TokenRejected
from signserv.contract import (
    BodyNotJSON,
    ContractError,
    b64encode,
    is_valid_key_name,
    parse_sign_request,
)
from signserv.host.key_policy import ClientCertificateRequired, PolicyRefused
from signserv.secret import Secret
from signserv.server.api_errors import APIError, unauthorized
from signserv.server.authorization import token_from_authorization
from signserv.server.json_response import json_response
from signserv.server.rate_limit import RateLimiter
from signserv.server.request_audit import current_request
from signserv.server.signing import SigningService
from signserv.tke.wire.signed_input import describe_signed_input

_logger = logging.getLogger(__name__)


def client_address() -> str:
    """The address the request came from (the proxy's, behind a proxy)."""
    return request.remote_addr or "unknown"


def client_certificate() -> bytes | None:
    """The DER of the TLS peer's certificate, verified against ``tls.client_ca_file``; None
    without TLS or when the client sent none (gunicorn hands the socket to the app)."""
    connection = request.environ.get("gunicorn.socket")
    if not isinstance(connection, ssl.SSLSocket):
        return None
    return connection.getpeercert(binary_form=True)


def _checked_key_name(name: str) -> str:
    if not is_valid_key_name(name):
        raise APIError(
            400,
            "invalid_key_name",
            "key names are 1 to 128 RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~)",
        )
    return name


def _refused(exc: KeystoreError) -> APIError:
    """The answer for a keystore refusal; unknown key and wrong token are one answer."""
    if isinstance(exc, (KeyNotFound, TokenRejected)):
        return unauthorized()
    if isinstance(exc, KeyDisabled):
        return APIError(403, "key_disabled", "this key is disabled")
    _logger.error("keystore failure: %s", exc)
    return APIError(503, "keystore_unavailable", "the keystore is unavailable")


def _policy_refusal(exc: PolicyRefused | ClientCertificateRequired) -> APIError:
    """The 403 for a key's policy, with the rule in the audit record; raised only once the
    token was proven."""
    if isinstance(exc, PolicyRefused):
        current_request().refused_by(exc.rule)
        return APIError(403, "policy_refused", str(exc), fields={"rule": exc.rule})
    current_request().refused_by("client certificate")
    return APIError(403, "client_certificate_required", str(exc))


def _sign_request_data() -> bytes:
    try:
        return parse_sign_request(request.get_data(cache=False))
    except BodyNotJSON as exc:
        if request.mimetype not in ("", "application/json"):
            raise APIError(415, "unsupported_media_type", "the body must be JSON") from None
        raise APIError(400, "invalid_request", str(exc)) from None
    except ContractError as exc:
        raise APIError(400, "invalid_request", str(exc)) from None
    except ValueError:  # e.g. an integer past Python's 4,300-digit conversion limit
        raise APIError(400, "invalid_request", "request body is not valid JSON") from None


def contract_blueprint(signing: SigningService, rate_limiter: RateLimiter | None) -> Blueprint:
    """The routes, bound to one signing service and an optional per-address rate limit."""
    blueprint = Blueprint("contract", __name__)

    def begin(name: str, operation: str) -> tuple[str, Secret[str]]:
        """Audit from here on, apply the rate limit, check the name, read the token."""
        current_request().names_key(name, operation)
        if rate_limiter is not None:
            wait = rate_limiter.retry_after(client_address())
            if wait:
                raise APIError(
                    429,
                    "rate_limited",
                    "too many requests from this address",
                    {"Retry-After": str(wait)},
                )
        key_name = _checked_key_name(name)
        return key_name, token_from_authorization(request.headers.get("Authorization"))

    @blueprint.get("/keys/<name>")
    def get_public_key(name: str) -> Response:
        key_name, token = begin(name, "public_key")
        try:
            der = signing.public_key(key_name, token, client_address(), client_certificate())
        except KeystoreError as exc:
            raise _refused(exc) from None
        except (PolicyRefused, ClientCertificateRequired) as exc:
            raise _policy_refusal(exc) from None
        return json_response(200, {"publickey": b64encode(der)})

    @blueprint.post("/sign/<name>")
    def sign(name: str) -> Response:
        key_name, token = begin(name, "sign")
        data = _sign_request_data()
        digest = hashlib.sha512(data).digest()  # the one hash of the input (§1.7)
        signed = describe_signed_input(data)
        current_request().signs_input(digest, len(data), signed)
        try:
            signature = signing.sign_digest(
                key_name, token, digest, client_address(), client_certificate(), signed
            )
        except KeystoreError as exc:
            raise _refused(exc) from None
        except (PolicyRefused, ClientCertificateRequired) as exc:
            raise _policy_refusal(exc) from None
        return json_response(200, {"signature": b64encode(signature)})

    return blueprint
