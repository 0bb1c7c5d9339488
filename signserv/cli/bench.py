"""`signserv bench`: measure a throwaway service on this machine and print the figures."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from signserv.bench import (
    SMOKE_OPTIONS,
    BenchOptions,
    render_comparison,
    render_table,
    run_benchmark,
)


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
@click.option(
    "--backend",
    type=click.Choice(["sqlite", "postgres", "both"]),
    default="sqlite",
    show_default=True,
    help="Keystore backend to measure; 'both' runs each and reports them side by side.",
)
@click.option(
    "--postgres-url",
    metavar="URL",
    help="An EMPTY PostgreSQL database for --backend postgres|both (no password in the URL); "
    "the throwaway keystore is dropped from it afterwards.",
)
@click.option(
    "--postgres-password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding that database's password (else PGPASSWORD or ~/.pgpass).",
)
def bench_command(
    smoke: bool,
    as_json: bool,
    seconds: int | None,
    flood_seconds: int | None,
    workers: int | None,
    load_generator: str,
    backend: str,
    postgres_url: str | None,
    postgres_password_file: Path | None,
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
    reports = [
        run_benchmark(
            dataclasses.replace(options, backend=name, keystore=keystore),
            progress=_progress(name),
        )
        for name, keystore in _backends(backend, postgres_url, postgres_password_file)
    ]
    if as_json:
        documents = {report.backend: json.loads(report.as_json()) for report in reports}
        click.echo(reports[0].as_json() if len(reports) == 1 else json.dumps(documents, indent=2))
    else:
        click.echo(render_table(reports[0]) if len(reports) == 1 else render_comparison(reports))
    if any(report.error_count for report in reports):
        sys.exit(1)


def _progress(backend: str) -> Callable[[str], None]:
    return lambda step: click.echo(f"bench ({backend}): {step}", err=True)


def _backends(
    choice: str, url: str | None, password_file: Path | None
) -> list[tuple[str, dict[str, str]]]:
    """Each backend to measure, with the keystore section of its throwaway config."""
    chosen: list[tuple[str, dict[str, str]]] = []
    if choice in ("sqlite", "both"):
        chosen.append(("sqlite", {}))
    if choice in ("postgres", "both"):
        if url is None:
            raise click.UsageError("--backend postgres|both needs --postgres-url")
        section = {"url": url}
        if password_file is not None:
            section["password_file"] = str(password_file.absolute())
        chosen.append(("postgres", section))
    return chosen
