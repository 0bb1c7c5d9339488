"""Reading the service's answers the way the TKE client does (TKE-REFERENCE §1.4-1.6)."""

from __future__ import annotations

from signserv.checker.errors import ContractViolation
from signserv.checker.probe import Exchange
from signserv.checker.results import Verdict, passed
from signserv.contract import (
    RAW_SIGNATURE_BYTES,
    MalformedSignature,
    NonStandardBase64,
    UnusableAnswer,
    b64decode_strict,
    decode_signature,
    read_answer_member,
)


def require_answered_directly(exchange: Exchange) -> None:
    """Refuse a redirect: the service must serve the contract's paths itself (DESIGN §1)."""
    if 300 <= exchange.status < 400:
        raise ContractViolation(
            f"{exchange.describe()}: a signing service must answer directly; the TKE client "
            "follows redirects, re-sending the token and turning POST /sign into a GET on 301-303"
        )


def require_success(exchange: Exchange) -> None:
    """Refuse anything the TKE client would not treat as success (a non-2xx status)."""
    require_answered_directly(exchange)
    if not exchange.succeeded:
        raise ContractViolation(f"refused the TKE client's request: {exchange.describe()}")


def require_refused(exchange: Exchange, what: str) -> Verdict:
    """PASS when ``exchange`` was refused with 4xx; otherwise fail naming ``what`` was sent."""
    require_answered_directly(exchange)
    if 400 <= exchange.status < 500:
        return passed(f"refused: {exchange.describe()}")
    if exchange.succeeded:
        raise ContractViolation(f"{what} was accepted: {exchange.describe()}")
    raise ContractViolation(f"{what} must be refused with 4xx: {exchange.describe()}")


def string_member(exchange: Exchange, member: str) -> str:
    """The JSON string ``member`` of a 2xx answer, with the TKE client's error texts (§1.4)."""
    require_success(exchange)
    try:
        return read_answer_member(exchange.body, member)
    except UnusableAnswer as exc:
        raise ContractViolation(f"{exc}: {exchange.describe()}") from None


def decode_base64_member(text: str, member: str) -> bytes:
    """Decode ``text`` as the TKE client does: standard alphabet, padding required."""
    try:
        return b64decode_strict(text, what=member)
    except NonStandardBase64 as exc:
        raise ContractViolation(f"{exc}{_base64_hint(text)}") from None


def signature_pair(exchange: Exchange) -> tuple[int, int]:
    """(R, S) of a POST /sign answer, which must be base64 of DER SEQUENCE{INTEGER R, INTEGER S}."""
    raw = decode_base64_member(string_member(exchange, "signature"), "signature")
    try:
        return decode_signature(raw)
    except MalformedSignature as exc:
        hint = ""
        if len(raw) == RAW_SIGNATURE_BYTES:
            hint = f"; its {len(raw)} bytes look like raw r||s (IEEE P1363), not DER"
        raise ContractViolation(f"{exc}{hint}") from None


def _base64_hint(text: str) -> str:
    if "-" in text or "_" in text:
        return " (it uses the URL-safe alphabet; the TKE client needs + and /)"
    if len(text) % 4:
        return " (its = padding is missing; the TKE client requires it)"
    return ""
