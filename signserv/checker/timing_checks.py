"""Median latency of GET /keys and POST /sign: informational, never a verdict."""

from __future__ import annotations

import statistics

from signserv.checker.context import Check, CheckContext
from signserv.checker.probe import Exchange
from signserv.checker.responses import require_success
from signserv.checker.results import Verdict, informed
from signserv.checker.signing_checks import SAMPLE_INPUT
from signserv.contract import build_sign_request_body

TIMED_CALLS = 5


def check_get_latency(context: CheckContext) -> Verdict:
    """Median latency of GET /keys/<name>."""
    settings = context.settings
    exchanges = [context.probe.get_key(settings.key, settings.token) for _ in range(TIMED_CALLS)]
    return informed(_median_latency(exchanges))


def check_post_latency(context: CheckContext) -> Verdict:
    """Median latency of POST /sign/<name> with a typical command-sized input."""
    settings = context.settings
    body = build_sign_request_body(SAMPLE_INPUT)
    exchanges = [
        context.probe.post_sign(settings.key, settings.token, body) for _ in range(TIMED_CALLS)
    ]
    return informed(_median_latency(exchanges))


def _median_latency(exchanges: list[Exchange]) -> str:
    for exchange in exchanges:
        require_success(exchange)
    median = statistics.median(exchange.seconds for exchange in exchanges)
    first = exchanges[0]
    return f"{first.method} {first.path}: median {median * 1000:.1f} ms over {len(exchanges)} calls"


TIMING_CHECKS = (
    Check("timing.get-latency", check_get_latency),
    Check("timing.post-latency", check_post_latency),
)
