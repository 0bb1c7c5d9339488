"""The key-name rule of the signing-service contract, shared by the store and every HTTP side.

The TKE client appends a key name to the service URL unescaped, so a name is limited to RFC 3986
§2.3's unreserved characters; "." and ".." are dot-segments that HTTP clients remove from paths
(RFC 3986 §5.2.4), so they can never reach the service as names.
"""

from __future__ import annotations

import re

KEY_NAME_MAX_LENGTH = 128
_KEY_NAME = re.compile(rf"[A-Za-z0-9\-._~]{{1,{KEY_NAME_MAX_LENGTH}}}")
_DOT_SEGMENTS = frozenset({".", ".."})


def is_valid_key_name(name: str) -> bool:
    """True when ``name`` is 1..128 RFC 3986 unreserved characters and not a dot-segment."""
    return _KEY_NAME.fullmatch(name) is not None and name not in _DOT_SEGMENTS


def key_name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a key name, in words, or None when it is valid."""
    if not name:
        return "a key name must not be empty"
    if len(name) > KEY_NAME_MAX_LENGTH:
        return f"a key name is at most {KEY_NAME_MAX_LENGTH} characters"
    if not is_valid_key_name(name):
        return (
            "a key name may contain only the RFC 3986 unreserved characters A-Z a-z 0-9 - . _ ~"
            " and may not be '.' or '..'"
        )
    return None
