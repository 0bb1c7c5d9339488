"""What a load phase reports: requests, rate, p50/p99 latency, answers by status, and errors."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from signserv.bench.http_load import LoadResult

BUILTIN_GENERATOR = "built-in asyncio client"


@dataclass(frozen=True)
class LoadSummary:
    """One phase's figures; ``errors`` counts every answer or failure the phase did not expect."""

    generator: str
    connections: int
    seconds: float
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    service_cpu_ms_per_request: float | None = None

    @property
    def error_count(self) -> int:
        """Unexpected statuses plus transport failures."""
        return sum(self.errors.values())


def percentile_ms(latencies: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile of latencies given in seconds, in milliseconds (0 if none)."""
    if not latencies:
        return 0.0
    ordered = sorted(latencies)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 2)


def summarize(result: LoadResult, connections: int, expected: Collection[int]) -> LoadSummary:
    """Summarize a built-in client run; statuses outside ``expected`` are errors."""
    errors = {
        f"status {status}": count
        for status, count in sorted(result.statuses.items())
        if status not in expected
    }
    errors.update(result.socket_errors)
    requests = sum(result.statuses.values()) + sum(result.socket_errors.values())
    return LoadSummary(
        generator=BUILTIN_GENERATOR,
        connections=connections,
        seconds=round(result.elapsed, 2),
        requests=requests,
        per_second=round(requests / result.elapsed, 1) if result.elapsed else 0.0,
        p50_ms=percentile_ms(result.latencies, 50),
        p99_ms=percentile_ms(result.latencies, 99),
        statuses={str(status): count for status, count in sorted(result.statuses.items())},
        errors=errors,
    )
