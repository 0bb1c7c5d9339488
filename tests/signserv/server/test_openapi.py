"""The OpenAPI document and the app's routes describe the same endpoints."""

from __future__ import annotations

import re

from flask import Flask

from signserv.server.openapi import openapi_document

# Flask adds HEAD to every GET and OPTIONS to every route; neither is part of the API.
_IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
# Flask's built-in static route: the app has no static folder, so it answers 404 to everything.
_FLASK_STATIC_ENDPOINT = "static"


def _routes(app: Flask) -> set[tuple[str, str]]:
    """(OpenAPI path, lower-case method) for every route the app serves."""
    return {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != _FLASK_STATIC_ENDPOINT
        for method in (rule.methods or set()) - _IMPLICIT_METHODS
    }


def _documented() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, operations in openapi_document()["paths"].items()
        for method in operations
    }


def test_every_route_is_documented_and_every_documented_path_is_served(app: Flask) -> None:
    assert _routes(app) == _documented()


def test_the_operational_endpoints_are_documented() -> None:
    assert {"/healthz", "/readyz", "/metrics", "/openapi.json"} <= set(openapi_document()["paths"])


def test_an_empty_input_is_valid_by_the_schema() -> None:
    """The service signs an empty message, so the schema must not demand a minimum length."""
    post = openapi_document()["paths"]["/sign/{name}"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert "minLength" not in schema["properties"]["input"]
