"""The checker against our own `signserv serve` under gunicorn: every check passes."""

from __future__ import annotations

from typing import Any

from signserv.checker import CheckSettings, Outcome, render_text, run_checks
from signserv.secret import Secret


def test_our_own_service_passes_every_check(signserv_server: Any) -> None:
    """No FAIL, no WARN, no SKIP: the reference implementation conforms in full."""
    report = run_checks(
        CheckSettings(
            base_url=signserv_server.url,
            key="key-a",
            token=Secret(signserv_server.tokens["key-a"]),
            second_key="key-b",
            second_token=Secret(signserv_server.tokens["key-b"]),
        )
    )
    outcomes = {result.outcome for result in report.results}
    assert outcomes <= {Outcome.PASS, Outcome.INFO}, render_text(report)
    [empty_input] = [result for result in report.results if result.check == "sign.empty-input"]
    assert "signed correctly" in empty_input.evidence  # signed, not refused
