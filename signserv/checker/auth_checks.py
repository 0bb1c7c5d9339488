"""Authentication: bad tokens and unknown keys refused alike, and tokens kept off the clear wire.

A real service may lock a key out after repeated failures, so these checks run last, send the
checked key only FAILED_AUTHENTICATIONS requests without its right token, and end with one that
has it (a success resets the failure count in services that keep one).
"""

from __future__ import annotations

import ipaddress
import secrets
from http import HTTPStatus
from urllib.parse import urlsplit

from signserv.checker.context import Check, CheckContext, require
from signserv.checker.errors import PrerequisiteMissing
from signserv.checker.probe import Exchange
from signserv.checker.responses import require_refused, require_success
from signserv.checker.results import Verdict, passed, warned
from signserv.checker.signing_checks import SAMPLE_INPUT
from signserv.contract import build_sign_request_body
from signserv.secret import Secret

FAILED_AUTHENTICATIONS = 6  # missing x2, wrong x2, the other key's x2
_SAMPLE_BODY = build_sign_request_body(SAMPLE_INPUT)


def check_transport(context: CheckContext) -> Verdict:
    """Plain http is fine on loopback; anywhere else tokens would cross the network in clear."""
    parts = urlsplit(context.probe.base_url)
    if parts.scheme == "https":
        return passed("https: tokens are protected in transit")
    if _is_loopback(parts.hostname or ""):
        return passed(f"plain http to the loopback host {parts.hostname}")
    return warned(
        f"plain http to {parts.hostname}: every request carries a token in clear; use https"
    )


def check_missing_token(context: CheckContext) -> Verdict:
    """No ``Authorization`` header, and the empty one the TKE client sends for an empty token."""
    key = context.settings.key
    without_header = context.probe.get_key(key, None)
    empty_header = context.probe.post_sign(key, Secret(""), _SAMPLE_BODY)
    return _require_all_refused([without_header, empty_header], "a request without a token")


def check_wrong_token(context: CheckContext) -> Verdict:
    """A wrong token is refused on both endpoints."""
    key = context.settings.key
    wrong = Secret("signserv-check-wrong-" + secrets.token_urlsafe(24))
    context.wrong_token_answer = context.probe.get_key(key, wrong)
    signing = context.probe.post_sign(key, wrong, _SAMPLE_BODY)
    return _require_all_refused([context.wrong_token_answer, signing], "a wrong token")


def check_other_keys_token(context: CheckContext) -> Verdict:
    """The second key's valid token is refused for the first key."""
    settings = context.settings
    if settings.second_key is None or settings.second_token is None:
        raise PrerequisiteMissing("skipped: no --key2 and its token given")
    require_success(context.probe.get_key(settings.second_key, settings.second_token))
    reading = context.probe.get_key(settings.key, settings.second_token)
    signing = context.probe.post_sign(settings.key, settings.second_token, _SAMPLE_BODY)
    return _require_all_refused([reading, signing], f"the token of key {settings.second_key}")


def check_unknown_key(context: CheckContext) -> Verdict:
    """A key name the service does not hold is refused."""
    unknown = "signserv-check-unknown-" + secrets.token_hex(8)
    context.unknown_key_answer = context.probe.get_key(unknown, context.settings.token)
    return require_refused(context.unknown_key_answer, "an unknown key name")


def check_key_enumeration(context: CheckContext) -> Verdict:
    """An unknown key and a wrong token get the same answer, so key names cannot be probed."""
    wrong_token = require(context.wrong_token_answer, "auth.wrong-token")
    unknown_key = require(context.unknown_key_answer, "auth.unknown-key")
    if (wrong_token.status, wrong_token.body) == (unknown_key.status, unknown_key.body):
        return passed(f"unknown key and wrong token both answer {wrong_token.status}, same body")
    return warned(
        "an unknown key and a wrong token are told apart, so anyone can find out which key "
        f"names exist: {unknown_key.describe()} vs {wrong_token.describe()}"
    )


def check_still_usable(context: CheckContext) -> Verdict:
    """After the failures above, the right token still works (and resets any failure count)."""
    exchange = context.probe.get_key(context.settings.key, context.settings.token)
    if exchange.status == HTTPStatus.TOO_MANY_REQUESTS:
        return warned(
            f"the key is locked out for this address after at most {FAILED_AUTHENTICATIONS} "
            f"failed authentications: {exchange.describe()}"
        )
    require_success(exchange)
    return passed(f"the right token still works: GET {exchange.path} -> {exchange.status}")


def _require_all_refused(exchanges: list[Exchange], what: str) -> Verdict:
    for exchange in exchanges:
        require_refused(exchange, what)
    return passed("refused: " + "; ".join(exchange.describe() for exchange in exchanges))


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


AUTHENTICATION_CHECKS = (
    Check("auth.transport", check_transport),
    Check("auth.wrong-token", check_wrong_token),
    Check("auth.unknown-key", check_unknown_key),
    Check("auth.key-enumeration", check_key_enumeration),
    Check("auth.missing-token", check_missing_token),
    Check("auth.other-keys-token", check_other_keys_token),
    Check("auth.still-usable", check_still_usable),
)
