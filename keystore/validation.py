"""Rules for key names and tokens, enforced by the store itself so no caller can skip them."""

from __future__ import annotations

import re

from keystore.errors import InvalidKeyName, InvalidToken

KEY_NAME_MAX_LENGTH = 128
TOKEN_MIN_LENGTH = 20
TOKEN_MAX_LENGTH = 512
# RFC 3986 §2.3 unreserved characters: the TKE client appends names to URLs unescaped.
_KEY_NAME = re.compile(r"[A-Za-z0-9\-._~]{1,128}")
# Tokens travel raw in an HTTP header: visible ASCII, no spaces (so "Bearer <token>" is unambiguous).
_TOKEN = re.compile(r"[\x21-\x7e]+")


# "." and ".." are dot-segments that HTTP clients remove from paths (RFC 3986 §5.2.4).
_DOT_SEGMENTS = frozenset({".", ".."})


def is_valid_key_name(name: str) -> bool:
    """True when ``name`` is 1..128 RFC 3986 unreserved characters and not a dot-segment."""
    return _KEY_NAME.fullmatch(name) is not None and name not in _DOT_SEGMENTS


def require_key_name(name: str) -> str:
    """Return ``name`` unchanged, or raise :class:`InvalidKeyName` saying what is wrong."""
    if not name:
        raise InvalidKeyName("a key name must not be empty")
    if len(name) > KEY_NAME_MAX_LENGTH:
        raise InvalidKeyName(f"a key name is at most {KEY_NAME_MAX_LENGTH} characters")
    if not is_valid_key_name(name):
        raise InvalidKeyName(
            "a key name may contain only the RFC 3986 unreserved characters A-Z a-z 0-9 - . _ ~"
            " and may not be '.' or '..'"
        )
    return name


def require_token(token: str) -> str:
    """Return ``token`` unchanged if it may protect a key; the error never repeats the token."""
    if len(token) < TOKEN_MIN_LENGTH:
        raise InvalidToken(f"a token must be at least {TOKEN_MIN_LENGTH} characters long")
    if len(token) > TOKEN_MAX_LENGTH:
        raise InvalidToken(f"a token must be at most {TOKEN_MAX_LENGTH} characters long")
    if not _TOKEN.fullmatch(token):
        raise InvalidToken("a token may contain only visible ASCII characters, without spaces")
    return token
