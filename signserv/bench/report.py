"""The benchmark's report: one dataclass, its JSON form, and the table printed for people."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signserv.bench.openssl_speed import SignRate
from signserv.bench.phases import FloodSummary, SlowConnectionSummary
from signserv.bench.summary import LoadSummary


@dataclass(frozen=True)
class BenchReport:
    """Everything one run measured, with the conditions it was measured under."""

    cores: int
    load_average_before: float
    load_average_after: float
    kdf: str
    workers: int
    smoke: bool
    backend: str
    openssl: SignRate
    warm: dict[str, LoadSummary]
    hsm: LoadSummary | None
    hsm_status: str
    cold_first: LoadSummary
    cold_steady: LoadSummary
    warm_with_access_log: LoadSummary
    warm_up: LoadSummary
    wrong_token_flood: FloodSummary
    unknown_key_flood: FloodSummary
    slow_connections: SlowConnectionSummary

    @property
    def best_warm(self) -> LoadSummary:
        """The warm phase with the highest signing rate."""
        return max(self.warm.values(), key=lambda summary: summary.per_second)

    @property
    def ratio(self) -> float:
        """Service signatures per second over raw OpenSSL signatures per second."""
        return round(self.best_warm.per_second / self.openssl.per_second, 3)

    def phases(self) -> dict[str, LoadSummary]:
        """Every load phase by name, in the order they ran."""
        named = {"warm-up, a new connection per request": self.warm_up}
        named.update(
            {f"warm sign, {name} connections": summary for name, summary in self.warm.items()}
        )
        if self.hsm is not None:
            named[f"warm sign, HSM-backed key, {self.hsm.connections} connections"] = self.hsm
        named["cold first request per key"] = self.cold_first
        for flood_name, flood in self.floods().items():
            named[f"{flood_name}: attack"] = flood.attack
            named[f"{flood_name}: legitimate client"] = flood.legitimate
        slow = self.slow_connections
        named[
            f"{slow.count} idle/slow connections from {slow.source_address}: legitimate client"
        ] = slow.legitimate
        named["warm sign, 8 connections, access log on (was the default)"] = (
            self.warm_with_access_log
        )
        named["cold steady (cache off)"] = self.cold_steady
        return named

    def floods(self) -> dict[str, FloodSummary]:
        """The two floods by name."""
        return {
            "wrong-token flood": self.wrong_token_flood,
            f"unknown-key flood ({self.unknown_key_flood.attack.connections} connections)": (
                self.unknown_key_flood
            ),
        }

    @property
    def error_count(self) -> int:
        """Errors over every phase."""
        return sum(summary.error_count for summary in self.phases().values())

    def as_json(self) -> str:
        """The report for machines: every figure, plus the headline numbers at the top level."""
        document = {
            "openssl_sign_per_s": self.openssl.per_second,
            "service_sign_per_s": self.best_warm.per_second,
            "ratio": self.ratio,
            "hsm_sign_per_s": None if self.hsm is None else self.hsm.per_second,
            "errors": self.error_count,
            **dataclasses.asdict(self),
            "phases": {
                name: dataclasses.asdict(summary) for name, summary in self.phases().items()
            },
        }
        return json.dumps(document, indent=2)


def _cell(summary: LoadSummary) -> str:
    cpu = summary.service_cpu_ms_per_request
    return (
        f"| {summary.requests} | {summary.per_second:g} | {summary.p50_ms:g} | {summary.p99_ms:g} | "
        f"{'' if cpu is None else f'{cpu:g}'} | {summary.error_count} | {summary.generator} |"
    )


def _hsm_rate(report: BenchReport) -> str:
    if report.hsm is None:
        return f"unavailable: SoftHSM2 {report.hsm_status}"
    return f"{report.hsm.per_second:g}  (warm, {report.hsm.connections} connections, SoftHSM2)"


def render_table(report: BenchReport) -> str:
    """A Markdown report: headline figures, then one row per phase, then the floods' memory."""
    best = report.best_warm
    lines = [
        f"signserv bench{' --smoke (lowered argon2id cost: not production figures)' if report.smoke else ''}",
        f"machine: {report.cores} cores shared by the load generator, OpenSSL and the service; "
        f"load average {report.load_average_before:.2f} before, {report.load_average_after:.2f} after",
        f"service: signserv serve, {report.workers} workers; argon2id {report.kdf}; "
        f"keystore {report.backend}",
        "",
        f"openssl_sign_per_s  {report.openssl.per_second:g}  ({report.openssl.source})",
        f"service_sign_per_s  {best.per_second:g}  (warm, {best.connections} connections)",
        f"ratio               {report.ratio:g}",
        f"hsm_sign_per_s      {_hsm_rate(report)}",
        f"errors              {report.error_count}",
        "",
        "| phase | requests | req/s | p50 ms | p99 ms | service CPU ms/req | errors | generator |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {name} {_cell(summary)}" for name, summary in report.phases().items()]
    lines.append("")
    for name, flood in report.floods().items():
        lines.append(
            f"{name}: peak service RSS {flood.peak_rss_mib:g} MiB; {flood.argon2id_runs} wrong "
            f"tokens ran argon2id (401), {flood.refused_before_argon2id} were refused before it "
            f"(429, or 503 with the cold slots full); answers {flood.attack.statuses}"
        )
    slow = report.slow_connections
    quiet = report.warm["1"]
    lines.append(
        f"{slow.count} idle/slow connections from {slow.source_address}: legitimate client p50 "
        f"{slow.legitimate.p50_ms:g} ms, p99 {slow.legitimate.p99_ms:g} ms (quiet p99 "
        f"{quiet.p99_ms:g} ms at 1 connection); connections opened {slow.held.opened}, closed "
        f"by the service {slow.held.closed_by_service}, refused {slow.held.failed_to_open}; "
        f"peak service RSS {slow.peak_rss_mib:g} MiB"
    )
    for name, summary in report.phases().items():
        if summary.errors:
            lines.append(f"errors in {name}: {summary.errors}")
    return "\n".join(lines)


def render_comparison(documents: Mapping[str, Mapping[str, Any]]) -> str:
    """Backends side by side, from each run's JSON report: headline figures, then every phase's
    rate and latency under each."""
    names = list(documents)
    lines = [
        "signserv bench: " + " vs ".join(names),
        "",
        "| figure | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for figure in ("openssl_sign_per_s", "service_sign_per_s", "ratio", "errors"):
        lines.append(f"| {figure} | " + " | ".join(str(documents[n][figure]) for n in names) + " |")
    lines += [
        "",
        "| phase | " + " | ".join(f"{n} req/s | {n} p50 ms | {n} p99 ms" for n in names) + " |",
        "|---|" + "---|---|---|" * len(names),
    ]
    for phase in documents[names[0]]["phases"]:
        cells = []
        for name in names:
            summary = documents[name]["phases"].get(phase)
            cells.append(
                "— | — | —"
                if summary is None
                else f"{summary['per_second']:g} | {summary['p50_ms']:g} | {summary['p99_ms']:g}"
            )
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
