"""Reports read the same to a person (aligned lines) and to a machine (JSON)."""

from __future__ import annotations

import json

from signserv.checker import CheckResult, Outcome, Report, render_json, render_text


def sample_report() -> Report:
    """Two checks, one of them failed."""
    return Report(
        base_url="https://signer.example.com",
        key="admin1",
        results=[
            CheckResult("public-key.der", Outcome.PASS, "DER SEQUENCE{INTEGER X, INTEGER Y}"),
            CheckResult("sign.sha512-once", Outcome.FAIL, "verifies over SHA-256 of the input"),
        ],
        requests_sent=3,
    )


def test_text_has_one_aligned_line_per_check_and_a_summary() -> None:
    lines = render_text(sample_report()).splitlines()
    assert lines == [
        "signserv check https://signer.example.com --key admin1",
        "PASS  public-key.der    DER SEQUENCE{INTEGER X, INTEGER Y}",
        "FAIL  sign.sha512-once  verifies over SHA-256 of the input",
        "FAILED: 1 PASS, 1 FAIL, 0 WARN, 0 INFO, 0 SKIP; 3 requests sent",
    ]


def test_json_carries_the_same_facts() -> None:
    document = json.loads(render_json(sample_report()))
    assert document["ok"] is False
    assert document["summary"] == {"PASS": 1, "FAIL": 1, "WARN": 0, "INFO": 0, "SKIP": 0}
    assert document["checks"][1] == {
        "check": "sign.sha512-once",
        "outcome": "FAIL",
        "evidence": "verifies over SHA-256 of the input",
    }
    assert document["requests_sent"] == 3
