"""Reading the key token from the ``Authorization`` header (DESIGN §1)."""

from __future__ import annotations

from signserv.secret import Secret
from signserv.server.api_errors import unauthorized

_BEARER = "bearer "


def token_from_authorization(header: str | None) -> Secret[str]:
    """The token sent raw, as the TKE client does, or after ``Bearer ``; 401 when absent."""
    value = (header or "").strip()
    if value[: len(_BEARER)].lower() == _BEARER:
        value = value[len(_BEARER) :].strip()
    if not value:
        raise unauthorized()
    return Secret(value)
