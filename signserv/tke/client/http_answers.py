"""Reading the answers of IBM Cloud's HTTP APIs (IAM, TKE) safely: JSON objects, secrets masked."""

from __future__ import annotations

import json

from signserv.secret import MASK, Secret
from signserv.tke.errors import TKEError


def masked(text: str, *secrets: Secret[str]) -> str:
    """``text`` with every given secret, and its credential after a ``Bearer`` prefix, masked.

    An API or a proxy may echo a credential into an error body.
    """
    forms = {secret.reveal().strip() for secret in secrets}
    forms |= {form.partition(" ")[2] for form in forms if form.lower().startswith("bearer ")}
    for form in sorted(forms - {""}, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def json_object(text: str, *, what: str, error: type[TKEError]) -> dict[str, object]:
    """``text`` decoded as a JSON object, or ``error`` saying that ``what`` is not one."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise error(f"{what} is not JSON") from None
    if not isinstance(document, dict):
        raise error(f"{what} is not a JSON object")
    return document
