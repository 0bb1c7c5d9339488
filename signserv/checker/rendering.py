"""A report as aligned text lines for people, or as JSON for machines."""

from __future__ import annotations

import json

from signserv.checker.results import Report


def render_text(report: Report) -> str:
    """One line per check (outcome, id, evidence), then a summary line."""
    width = max((len(result.check) for result in report.results), default=0)
    lines = [f"signserv check {report.base_url} --key {report.key}"]
    lines += [
        f"{result.outcome.name:<4}  {result.check:<{width}}  {result.evidence}"
        for result in report.results
    ]
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    """The report as one JSON document; ``ok`` is false when any check failed."""
    document = {
        "base_url": report.base_url,
        "key": report.key,
        "ok": not report.failed,
        "checks": [
            {"check": result.check, "outcome": result.outcome.name, "evidence": result.evidence}
            for result in report.results
        ],
        "summary": {outcome.name: count for outcome, count in report.counts().items()},
        "requests_sent": report.requests_sent,
    }
    return json.dumps(document, indent=2) + "\n"


def _summary(report: Report) -> str:
    counts = ", ".join(f"{count} {outcome.name}" for outcome, count in report.counts().items())
    verdict = "FAILED" if report.failed else "conforms"
    return f"{verdict}: {counts}; {report.requests_sent} requests sent"
