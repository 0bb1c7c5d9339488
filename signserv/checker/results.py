"""What a check concludes and what a whole run reports."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field


class Outcome(enum.Enum):
    """A check's verdict; only FAIL makes the run fail."""

    PASS = enum.auto()
    FAIL = enum.auto()
    WARN = enum.auto()
    INFO = enum.auto()
    SKIP = enum.auto()


@dataclass(frozen=True)
class Verdict:
    """What one check function concludes; the runner names it with the check's id."""

    outcome: Outcome
    evidence: str


def passed(evidence: str) -> Verdict:
    """A PASS with its evidence."""
    return Verdict(Outcome.PASS, evidence)


def warned(evidence: str) -> Verdict:
    """A WARN: allowed by the contract, but a reviewer should look."""
    return Verdict(Outcome.WARN, evidence)


def informed(evidence: str) -> Verdict:
    """An INFO line: a measurement or a fact, never a verdict."""
    return Verdict(Outcome.INFO, evidence)


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: which check, its verdict and the evidence behind it."""

    check: str
    outcome: Outcome
    evidence: str


@dataclass
class Report:
    """Everything one run found about one service URL and key."""

    base_url: str
    key: str
    results: list[CheckResult] = field(default_factory=list)
    requests_sent: int = 0

    @property
    def failed(self) -> bool:
        """True when any check failed."""
        return any(result.outcome is Outcome.FAIL for result in self.results)

    def counts(self) -> dict[Outcome, int]:
        """How many checks ended with each outcome (every outcome listed, zeros included)."""
        tally = Counter(result.outcome for result in self.results)
        return {outcome: tally[outcome] for outcome in Outcome}
