"""Bad requests refused with 4xx, the doubled slash served, and concurrent signing correct."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from signserv.checker.context import Check, CheckContext, require
from signserv.checker.errors import CheckerError, ContractViolation
from signserv.checker.probe import Exchange
from signserv.checker.responses import require_refused, string_member
from signserv.checker.results import Verdict, passed
from signserv.checker.signing_checks import SAMPLE_INPUT
from signserv.contract import b64encode

CONCURRENT_SIGNATURES = 16
_SAMPLE_BASE64 = b64encode(SAMPLE_INPUT)
UNSUPPORTED_HASH_BODY = b'{"hash_algorithm":"sha2-256","input":"' + _SAMPLE_BASE64.encode() + b'"}'
NON_BASE64_BODY = b'{"hash_algorithm":"sha2-512","input":"this is not base64!"}'
MALFORMED_JSON_BODY = b'{"hash_algorithm":"sha2-512","input":'


def _post_sample(context: CheckContext, body: bytes) -> Exchange:
    return context.probe.post_sign(context.settings.key, context.settings.token, body)


def check_unsupported_hash(context: CheckContext) -> Verdict:
    """``hash_algorithm`` other than sha2-512 is refused."""
    exchange = _post_sample(context, UNSUPPORTED_HASH_BODY)
    return require_refused(exchange, 'an unsupported hash_algorithm ("sha2-256")')


def check_non_base64_input(context: CheckContext) -> Verdict:
    """An ``input`` that is not base64 is refused."""
    return require_refused(_post_sample(context, NON_BASE64_BODY), "a non-base64 input")


def check_malformed_json(context: CheckContext) -> Verdict:
    """A body that is not valid JSON is refused."""
    return require_refused(_post_sample(context, MALFORMED_JSON_BODY), "a truncated JSON body")


def check_trailing_slash(context: CheckContext) -> Verdict:
    """A base URL ending in "/" (the client then sends ``//keys/`` and ``//sign/``) works."""
    expected = require(context.publickey_text, "public-key.json")
    settings = context.settings
    exchange = context.probe.get_key(settings.key, settings.token, trailing_slash=True)
    if string_member(exchange, "publickey") != expected:
        raise ContractViolation(f"{exchange.path} returned a different public key than /keys/")
    context.sign_and_verify(SAMPLE_INPUT, trailing_slash=True)
    return passed(f"{exchange.path} and //sign/ are served directly and agree with the plain paths")


def check_concurrent_signatures(context: CheckContext) -> Verdict:
    """Sixteen signatures requested at once all verify."""
    require(context.verifying_key, "public-key.on-curve")
    inputs = [SAMPLE_INPUT + bytes([index]) for index in range(CONCURRENT_SIGNATURES)]
    with ThreadPoolExecutor(max_workers=CONCURRENT_SIGNATURES) as pool:
        outcomes = list(pool.map(lambda data: _signing_error(context, data), inputs))
    errors = [error for error in outcomes if error is not None]
    if errors:
        raise ContractViolation(
            f"{len(errors)} of {CONCURRENT_SIGNATURES} concurrent signatures failed; "
            f"the first: {errors[0]}"
        )
    return passed(f"{CONCURRENT_SIGNATURES} concurrent signatures all verify")


def _signing_error(context: CheckContext, data: bytes) -> str | None:
    try:
        context.sign_and_verify(data)
    except CheckerError as exc:
        return str(exc)
    return None


ROBUSTNESS_CHECKS = (
    Check("robust.unsupported-hash", check_unsupported_hash),
    Check("robust.non-base64-input", check_non_base64_input),
    Check("robust.malformed-json", check_malformed_json),
    Check("robust.trailing-slash", check_trailing_slash),
    Check("robust.concurrent-signatures", check_concurrent_signatures),
)
