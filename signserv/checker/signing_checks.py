"""POST /sign/<name> exactly as the TKE client sends it, verified the way a crypto unit would."""

from __future__ import annotations

import hashlib

from signserv.checker.context import Check, CheckContext, require
from signserv.checker.errors import ContractViolation
from signserv.checker.responses import require_answered_directly, signature_pair, string_member
from signserv.checker.results import Verdict, informed, passed
from signserv.checker.signatures import require_sha512_once
from signserv.contract import KEY_PROBE_INPUT, P521_GROUP_ORDER, build_sign_request_body

SAMPLE_INPUT = b"signserv check: a sample administrative command block"
LARGE_INPUT = bytes(range(256)) * 256


def check_signature_encoding(context: CheckContext) -> Verdict:
    """The TKE client's exact body is signed and answered with base64 DER SEQUENCE{R, S}."""
    body = build_sign_request_body(SAMPLE_INPUT).decode("ascii")
    try:
        context.sample_signature = context.sign(SAMPLE_INPUT)
    except ContractViolation as exc:
        if _reads_only_inputs(context):
            raise ContractViolation(
                "the service reads 'inputs' but not 'input': the TKE client sends 'input' "
                "(docs/protocol.md §2; 'inputs' is an older IBM page's name): accept both"
            ) from None
        raise ContractViolation(f"{exc} (body sent, as the TKE client sends it: {body})") from None
    return passed(
        "the TKE client's exact request is answered with DER SEQUENCE{INTEGER R, INTEGER S}"
    )


def _reads_only_inputs(context: CheckContext) -> bool:
    """After a refusal of the exact body: does the same request with 'inputs' get a signature?"""
    body = build_sign_request_body(SAMPLE_INPUT).replace(b'"input":', b'"inputs":')
    exchange = context.probe.post_sign(context.settings.key, context.settings.token, body)
    try:
        signature_pair(exchange)
    except ContractViolation:
        return False
    return True


def check_hashed_once(context: CheckContext) -> Verdict:
    """The signature is ECDSA P-521 over SHA-512 of the raw input, hashed exactly once."""
    key = require(context.verifying_key, "public-key.on-curve")
    signature = require(context.sample_signature, "sign.der")
    require_sha512_once(key, SAMPLE_INPUT, signature)
    return passed("verifies with ECDSA P-521 over SHA-512 of the input, hashed once")


def check_certificate_digest(context: CheckContext) -> Verdict:
    """A 64-byte certificate digest is hashed again, as admin certificates need (§1.7, §2.4)."""
    digest = hashlib.sha512(b"signserv check: a sample TBSCertificate").digest()
    context.sign_and_verify(digest)
    return passed(
        "a 64-byte SHA-512(TBS) input is hashed again: admin certificates will verify over "
        "SHA-512(SHA-512(TBS)) as the TKE client expects"
    )


def check_probe_input(context: CheckContext) -> Verdict:
    """The 100-zero-byte probe the TKE client sends to test a key is signed correctly."""
    context.sign_and_verify(KEY_PROBE_INPUT)
    return passed("the TKE client's key probe (100 zero bytes) is signed correctly")


def check_empty_input(context: CheckContext) -> Verdict:
    """Empty input is either signed correctly or refused cleanly with 4xx."""
    key = require(context.verifying_key, "public-key.on-curve")
    exchange = context.probe.post_sign(
        context.settings.key, context.settings.token, build_sign_request_body(b"")
    )
    require_answered_directly(exchange)
    if 400 <= exchange.status < 500:
        return passed(f"refused cleanly: {exchange.describe()}")
    if not exchange.succeeded:
        raise ContractViolation(
            f"an empty input must be signed or refused with 4xx: {exchange.describe()}"
        )
    require_sha512_once(key, b"", signature_pair(exchange))
    return passed("signed correctly over SHA-512 of no bytes")


def check_large_input(context: CheckContext) -> Verdict:
    """A 64 KiB input is signed correctly."""
    context.sign_and_verify(LARGE_INPUT)
    return passed(f"a {len(LARGE_INPUT) // 1024} KiB input is signed correctly")


def check_fresh_nonce(context: CheckContext) -> Verdict:
    """Every signature uses a fresh nonce: no R repeats, even for the same input signed twice."""
    first = context.sign(SAMPLE_INPUT)
    second = context.sign(SAMPLE_INPUT)
    if first[0] == second[0]:
        raise ContractViolation(
            "the same input signed twice gave the same R: the nonce is deterministic or reused, "
            "and the contract requires a fresh nonce on every call"
        )
    signatures = context.signatures
    inputs_by_r: dict[int, bytes] = {}
    for data, (r, _) in signatures:
        if r in inputs_by_r and inputs_by_r[r] != data:
            raise ContractViolation(
                "two different inputs were signed with the same R: the nonce was reused and "
                "anyone holding both signatures can compute the private key"
            )
        inputs_by_r[r] = data
    return passed(f"{len(signatures)} signatures, all with distinct R")


def check_low_s(context: CheckContext) -> Verdict:
    """Count high-S signatures: low-S is not required by the TKE contract, so this never fails."""
    signatures = context.signatures
    # A signature's S is "high" above n / 2.
    high = sum(1 for _, (_, s) in signatures if s > P521_GROUP_ORDER // 2)
    return informed(
        f"{high} of {len(signatures)} signatures have a high S; low-S is not required by the "
        "TKE contract and crypto units accept both"
    )


def check_stable_public_key(context: CheckContext) -> Verdict:
    """The public key is the same on a later call: its SKI is the administrator's identity."""
    first = require(context.publickey_text, "public-key.json")
    exchange = context.probe.get_key(context.settings.key, context.settings.token)
    if string_member(exchange, "publickey") != first:
        raise ContractViolation(
            "the public key changed between calls; its SKI is the administrator's identity in "
            "the crypto units, so every signature would stop verifying"
        )
    return passed("the public key is identical across calls")


SIGNING_CHECKS = (
    Check("sign.der", check_signature_encoding),
    Check("sign.sha512-once", check_hashed_once),
    Check("sign.certificate-digest", check_certificate_digest),
    Check("sign.probe-input", check_probe_input),
    Check("sign.empty-input", check_empty_input),
    Check("sign.64k-input", check_large_input),
    Check("sign.fresh-nonce", check_fresh_nonce),
    Check("sign.low-s", check_low_s),
    Check("sign.stable-public-key", check_stable_public_key),
)
