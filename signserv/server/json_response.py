"""The one way the service writes a JSON answer: compact, with an exact media type."""

from __future__ import annotations

import json

from flask import Response


def json_response(
    status: int, payload: dict[str, str], headers: dict[str, str] | None = None
) -> Response:
    """``payload`` as compact JSON with ``status``; error bodies are ``{"error", "message"}``."""
    body = json.dumps(payload, separators=(",", ":"))
    return Response(body, status=status, mimetype="application/json", headers=headers)
