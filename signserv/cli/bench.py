"""`signserv bench`: measure a throwaway service on this machine and print the figures."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    chosen = _backends(backend, postgres_url, postgres_password_file)
    if len(chosen) == 1:
        name, keystore = chosen[0]
        report = run_benchmark(
            dataclasses.replace(options, backend=name, keystore=keystore), _progress(name)
        )
        click.echo(report.as_json() if as_json else render_table(report))
        sys.exit(1 if report.error_count else 0)
    # One process per backend: a PKCS#11 library, once loaded, keeps its first token directory.
    documents = {name: _bench_in_child(name, click.get_current_context()) for name, _ in chosen}
    click.echo(json.dumps(documents, indent=2) if as_json else render_comparison(documents))
    if any(document["errors"] for document in documents.values()):
        sys.exit(1)


def _progress(backend: str) -> Callable[[str], None]:
    return lambda step: click.echo(f"bench ({backend}): {step}", err=True)


def _bench_in_child(backend: str, context: click.Context) -> dict[str, Any]:
    """Run this command for one ``backend`` in a child process; its JSON report."""
    arguments = ["--json", "--backend", backend]
    for name, value in context.params.items():
        if name in ("as_json", "backend") or value in (None, False):
            continue
        option = "--" + name.replace("_", "-")
        arguments += [option] if value is True else [option, str(value)]
    child = subprocess.run(  # noqa: S603 (this command, with its own parsed options)
        [sys.executable, "-m", "signserv", "bench", *arguments],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if child.returncode not in (0, 1) or not child.stdout.strip():
        raise click.ClickException(f"the {backend} benchmark failed (exit {child.returncode})")
    document: dict[str, Any] = json.loads(child.stdout)
    return document


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
