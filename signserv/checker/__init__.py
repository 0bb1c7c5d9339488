"""Conformance checker for any service that claims the TKE signing-service contract."""

from signserv.checker.context import CheckSettings
from signserv.checker.errors import CheckerError
from signserv.checker.rendering import render_json, render_text
from signserv.checker.results import CheckResult, Outcome, Report
from signserv.checker.runner import run_checks

__all__ = [
    "CheckResult",
    "CheckSettings",
    "CheckerError",
    "Outcome",
    "Report",
    "render_json",
    "render_text",
    "run_checks",
]
