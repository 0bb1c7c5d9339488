"""`signserv bench`: measure a throwaway service on this machine and print the figures."""

from __future__ import annotations

import dataclasses
import sys

import click

from signserv.bench import SMOKE_OPTIONS, BenchOptions, render_table, run_benchmark


@click.command("bench")
@click.option(
    "--smoke",
    is_flag=True,
    help="Run for a few seconds with a lowered argon2id cost: proves the benchmark works; "
    "its figures are not the service's.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--seconds",
    type=click.IntRange(1, 120),
    help="Length of each signing phase (default 10).",
)
@click.option(
    "--flood-seconds",
    type=click.IntRange(1, 120),
    help="Length of each flood (default 20).",
)
@click.option("--workers", type=click.IntRange(1, 64), help="gunicorn workers (default 2).")
@click.option(
    "--load-generator",
    type=click.Choice(["auto", "wrk", "builtin"]),
    default="auto",
    show_default=True,
    help="wrk for the fixed-request phases when installed (auto), or always the built-in client.",
)
def bench_command(
    smoke: bool,
    as_json: bool,
    seconds: int | None,
    flood_seconds: int | None,
    workers: int | None,
    load_generator: str,
) -> None:
    """Measure signatures/s against raw OpenSSL, latency, the cold path and flood cost.

    Starts `signserv serve` on 127.0.0.1 with a throwaway home (production argon2id cost unless
    --smoke), drives it, stops it, and exits 1 if any phase saw an error.
    """
    base = SMOKE_OPTIONS if smoke else BenchOptions()
    options = dataclasses.replace(
        base,
        phase_seconds=seconds or base.phase_seconds,
        flood_seconds=flood_seconds or base.flood_seconds,
        workers=workers or base.workers,
        load_generator=load_generator,
    )
    report = run_benchmark(options, progress=lambda step: click.echo(f"bench: {step}", err=True))
    click.echo(report.as_json() if as_json else render_table(report))
    if report.error_count:
        sys.exit(1)
