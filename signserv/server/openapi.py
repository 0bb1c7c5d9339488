"""The OpenAPI 3 description of the service, served at /openapi.json (docs/protocol.md).

It documents every route the app serves and every status each may answer, so a schema-driven
fuzzer can hold the service to it; a test compares its paths with the app's URL map.
"""

from __future__ import annotations

from typing import Any

from foundation import KEY_NAME_MAX_LENGTH
from signserv.contract import HASH_ALGORITHM

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _answers(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "Malformed request: bad key name, JSON, input or hash_algorithm (the message names it)",
        401: "Missing or wrong token, or no such key (one identical answer)",
        403: (
            "Only said after a correct token: the key is disabled (key_disabled), it is bound "
            "to a TLS client certificate the request did not come with "
            "(client_certificate_required), or its signing policy refuses the input "
            "(policy_refused, with 'rule' naming the rule)"
        ),
        404: "No such route",
        405: "Method not allowed",
        413: "Request body over the configured limit",
        415: "A body that is not JSON, sent with another media type",
        429: "Locked out after failed authentications, or rate limited; see Retry-After",
        500: "Internal error (no details)",
        503: "Keystore or audit log unavailable",
    }
    answers = {str(status): _error(texts[status]) for status in statuses}
    if 429 in statuses:
        answers["429"]["headers"] = {
            "Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "seconds"}
        }
    return answers


def _key_name_parameter() -> dict[str, Any]:
    return {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "Key name: RFC 3986 unreserved characters, not '.' or '..'",
        "schema": {
            "type": "string",
            "pattern": f"^[A-Za-z0-9._~-]{{1,{KEY_NAME_MAX_LENGTH}}}$",
            "example": "admin1",
        },
    }


def _json_body(name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": [name],
                    "properties": {name: {"type": "string", "format": "byte"}},
                }
            }
        },
    }


def _sign_request_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["hash_algorithm", "input"],
        "description": (
            "'inputs' (an older IBM page's name) is accepted in place of 'input'; "
            "both present and different is a 400"
        ),
        "properties": {
            "hash_algorithm": {"type": "string", "enum": [HASH_ALGORITHM]},
            "input": {"type": "string", "format": "byte"},
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the contract and the operational endpoints."""
    contract_errors = (400, 401, 403, 404, 405, 429, 500, 503)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "signserv",
            "version": "1",
            "description": "The IBM HPCS TKE signing-service contract (TKE_SIGNSERV_URL).",
        },
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "The key's token, raw (as the TKE client sends it) or 'Bearer <token>'",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "rule": {
                            "type": "string",
                            "description": (
                                "policy_refused only: the rule that refused, e.g. 'kind zeroize "
                                "not allowed', 'module 93AABEC2 not allowed', 'domain 4 not "
                                "allowed'"
                            ),
                        },
                    },
                }
            },
        },
        "paths": {
            "/keys/{name}": {
                "get": {
                    "summary": "The key's public key as base64 DER SEQUENCE{INTEGER X, INTEGER Y}",
                    "security": [{"token": []}],
                    "parameters": [_key_name_parameter()],
                    "responses": {
                        "200": _json_body("publickey", "The P-521 public key"),
                        **_answers(*contract_errors),
                    },
                }
            },
            "/sign/{name}": {
                "post": {
                    "summary": "ECDSA P-521 over SHA-512 of the decoded input, as base64 DER (R, S)",
                    "security": [{"token": []}],
                    "parameters": [_key_name_parameter()],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _sign_request_schema()}},
                    },
                    "responses": {
                        "200": _json_body("signature", "The DER ECDSA-Sig-Value"),
                        **_answers(*contract_errors, 413, 415),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "responses": {"200": _json_body("status", "The process answers")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: the keystore opens with this master key",
                    "responses": {
                        "200": _json_body("status", "Ready"),
                        **_answers(503),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics, summed over every worker",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This OpenAPI document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
    }
