"""GET /keys/<name>: JSON, base64, DER and curve, read as the TKE client reads them (§1.5)."""

from __future__ import annotations

from signserv import der
from signserv.checker.context import Check, CheckContext, require
from signserv.checker.errors import ContractViolation
from signserv.checker.responses import decode_base64_member, string_member
from signserv.checker.results import Verdict, informed, passed, warned
from signserv.checker.signatures import verifying_key
from signserv.contract import MalformedPublicKey, decode_public_key


def check_json_shape(context: CheckContext) -> Verdict:
    """The answer is 2xx JSON with a string ``publickey``."""
    exchange = context.probe.get_key(context.settings.key, context.settings.token)
    context.publickey_text = string_member(exchange, "publickey")
    return passed(f"{exchange.method} {exchange.path} -> {exchange.status} with a string publickey")


def check_base64(context: CheckContext) -> Verdict:
    """``publickey`` is standard base64 with padding."""
    text = require(context.publickey_text, "public-key.json")
    context.publickey_der = decode_base64_member(text, "publickey")
    return passed(f"standard base64 with padding, {len(context.publickey_der)} bytes")


def check_der_encoding(context: CheckContext) -> Verdict:
    """DER SEQUENCE{INTEGER X, INTEGER Y}: not SPKI, not a raw point, minimal, at most 66 bytes."""
    encoded = require(context.publickey_der, "public-key.base64")
    try:
        point = decode_public_key(encoded)
    except MalformedPublicKey as exc:
        raise ContractViolation(f"{exc}; the TKE client refuses it") from None
    context.point = point
    sizes = f"X {_byte_length(point.x)} bytes, Y {_byte_length(point.y)} bytes"
    trailing = len(encoded) - der.read_tlv(encoded).end
    if trailing:
        return warned(
            f"DER SEQUENCE{{INTEGER X, INTEGER Y}} ({sizes}) followed by {trailing} stray bytes; "
            "the TKE client ignores them, other readers may not"
        )
    return passed(f"DER SEQUENCE{{INTEGER X, INTEGER Y}}, minimal positive INTEGERs, {sizes}")


def check_on_curve(context: CheckContext) -> Verdict:
    """(X, Y) is a point on P-521 (the TKE client does not check; crypto units do)."""
    point = require(context.point, "public-key.der")
    context.verifying_key = verifying_key(point)
    return passed("(X, Y) is a point on P-521")


def check_ski(context: CheckContext) -> Verdict:
    """Show the SKI the TKE client computes: the administrator's identity in the crypto units."""
    point = require(context.point, "public-key.der")
    return informed(f"the TKE client will compute SKI {point.ski_hex()} (docs/protocol.md §3)")


def _byte_length(value: int) -> int:
    return (value.bit_length() + 7) // 8


PUBLIC_KEY_CHECKS = (
    Check("public-key.json", check_json_shape),
    Check("public-key.base64", check_base64),
    Check("public-key.der", check_der_encoding),
    Check("public-key.on-curve", check_on_curve),
    Check("public-key.ski", check_ski),
)
