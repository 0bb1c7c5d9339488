"""Rules for key names and tokens, enforced by the store itself so no caller can skip them."""

from __future__ import annotations

import re

from foundation import key_name_problem
from keystore.errors import InvalidKeyName, InvalidToken

TOKEN_MIN_LENGTH = 20
TOKEN_MAX_LENGTH = 512
# Tokens travel raw in an HTTP header: visible ASCII, no spaces (so "Bearer <token>" is unambiguous).
_TOKEN = re.compile(r"[\x21-\x7e]+")


def require_key_name(name: str) -> str:
    """Return ``name`` unchanged, or raise :class:`InvalidKeyName` saying what is wrong."""
    problem = key_name_problem(name)
    if problem is not None:
        raise InvalidKeyName(problem)
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
