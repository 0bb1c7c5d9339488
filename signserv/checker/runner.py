"""Run every check in order against one service and collect the report."""

from __future__ import annotations

from signserv.checker.auth_checks import AUTHENTICATION_CHECKS
from signserv.checker.context import Check, CheckContext, CheckSettings
from signserv.checker.errors import (
    ContractViolation,
    PrerequisiteMissing,
    RunLimitReached,
    ServiceUnreachable,
)
from signserv.checker.probe import ServiceProbe
from signserv.checker.public_key_checks import PUBLIC_KEY_CHECKS
from signserv.checker.results import CheckResult, Outcome, Report, Verdict
from signserv.checker.robustness_checks import ROBUSTNESS_CHECKS
from signserv.checker.signing_checks import SIGNING_CHECKS
from signserv.checker.timing_checks import TIMING_CHECKS
from signserv.secret import MASK

MAX_REQUESTS = 300
MAX_SECONDS = 300.0

# Authentication runs last: a service that locks a key out after failures must not
# turn the other checks into refusals.
ALL_CHECKS: tuple[Check, ...] = (
    PUBLIC_KEY_CHECKS + SIGNING_CHECKS + ROBUSTNESS_CHECKS + TIMING_CHECKS + AUTHENTICATION_CHECKS
)


def run_checks(settings: CheckSettings) -> Report:
    """Run every check in order; a service that stops answering ends the run with a FAIL."""
    probe = ServiceProbe(
        settings.base_url,
        timeout=settings.timeout,
        ca_bundle=settings.ca_bundle,
        max_requests=MAX_REQUESTS,
        max_seconds=MAX_SECONDS,
    )
    context = CheckContext(settings, probe)
    report = Report(base_url=probe.base_url, key=settings.key)
    try:
        for check in ALL_CHECKS:
            try:
                verdict = _decide(check, context)
            except (ServiceUnreachable, RunLimitReached) as exc:
                verdict = Verdict(Outcome.FAIL, f"{exc}; the remaining checks were not run")
                report.results.append(_result(check, verdict, settings))
                break
            report.results.append(_result(check, verdict, settings))
    finally:
        probe.close()
    report.requests_sent = probe.requests_sent
    return report


def _decide(check: Check, context: CheckContext) -> Verdict:
    try:
        return check.run(context)
    except ContractViolation as exc:
        return Verdict(Outcome.FAIL, str(exc))
    except PrerequisiteMissing as exc:
        return Verdict(Outcome.SKIP, str(exc))


def _result(check: Check, verdict: Verdict, settings: CheckSettings) -> CheckResult:
    """Name the verdict, masking the real tokens in case the service echoed one back."""
    evidence = verdict.evidence
    for token in (settings.token, settings.second_token):
        if token is not None and token.reveal():
            evidence = evidence.replace(token.reveal(), MASK)
    return CheckResult(check=check.id, outcome=verdict.outcome, evidence=evidence)
