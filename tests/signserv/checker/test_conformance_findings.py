"""The checker against the fake service: clean when it conforms, and each flaw caught by its check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from signserv.checker import CheckSettings, Outcome, Report, run_checks
from signserv.secret import Secret

StartFakeService = Callable[..., Any]


def check_fake(service: Any, *, second_key: bool = True) -> Report:
    """Run every check against ``service`` with key admin1 (and admin2 as the other key)."""
    return run_checks(
        CheckSettings(
            base_url=service.url,
            key="admin1",
            token=Secret(service.tokens["admin1"]),
            second_key="admin2" if second_key else None,
            second_token=Secret(service.tokens["admin2"]) if second_key else None,
            timeout=5.0,
        )
    )


def outcome_of(report: Report, check: str) -> tuple[Outcome, str]:
    """The outcome and evidence of one check in ``report``."""
    [result] = [result for result in report.results if result.check == check]
    return result.outcome, result.evidence


def test_a_conforming_service_passes_every_check(
    start_fake_service: StartFakeService,
) -> None:
    report = check_fake(start_fake_service())
    problems = [r for r in report.results if r.outcome not in (Outcome.PASS, Outcome.INFO)]
    assert problems == []
    assert not report.failed
    assert outcome_of(report, "sign.low-s")[0] is Outcome.INFO


FLAWS = [
    ("spki_public_key", "public-key.der", Outcome.FAIL, "SubjectPublicKeyInfo"),
    ("padded_public_key", "public-key.der", Outcome.FAIL, "not minimally encoded"),
    ("trailing_bytes_public_key", "public-key.der", Outcome.WARN, "2 stray bytes"),
    ("changing_public_key", "sign.stable-public-key", Outcome.FAIL, "public key changed"),
    ("crashing_on_empty_input", "sign.empty-input", Outcome.FAIL, "-> 500"),
    ("ignores_hash_algorithm", "robust.unsupported-hash", Outcome.FAIL, "was accepted"),
    ("off_curve_public_key", "public-key.on-curve", Outcome.FAIL, "not a point on the P-521"),
    ("urlsafe_unpadded_base64", "public-key.base64", Outcome.FAIL, "URL-safe alphabet"),
    ("raw_r_s_signature", "sign.der", Outcome.FAIL, "look like raw r||s"),
    ("sha256_signature", "sign.sha512-once", Outcome.FAIL, "SHA-256 of the input"),
    (
        "double_hashed_signature",
        "sign.sha512-once",
        Outcome.FAIL,
        "SHA-512 of SHA-512 of the input",
    ),
    ("deterministic_signature", "sign.fresh-nonce", Outcome.FAIL, "signed twice gave the same R"),
    ("accepts_any_token", "auth.wrong-token", Outcome.FAIL, "a wrong token was accepted"),
    ("unknown_key_is_404", "auth.key-enumeration", Outcome.WARN, "which key names exist"),
    ("reads_only_inputs", "sign.der", Outcome.FAIL, "reads 'inputs' but not 'input'"),
    (
        "redirects_doubled_slash",
        "robust.trailing-slash",
        Outcome.FAIL,
        "308 redirect to /keys/admin1",
    ),
]


@pytest.mark.parametrize(("behaviour", "check", "outcome", "phrase"), FLAWS)
def test_each_flaw_is_caught_by_its_check(
    start_fake_service: StartFakeService,
    behaviour: str,
    check: str,
    outcome: Outcome,
    phrase: str,
) -> None:
    report = check_fake(start_fake_service(behaviour))
    found, evidence = outcome_of(report, check)
    assert found is outcome, evidence
    assert phrase in evidence
    assert report.failed is (outcome is Outcome.FAIL)
