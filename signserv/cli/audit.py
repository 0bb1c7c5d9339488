"""`signserv audit verify|tail`: prove the audit chain, or read its newest records."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import click

from signserv.cli.context import pass_settings
from signserv.cli.home_state import open_home_keystore
from signserv.host.audit_log import AUDIT_MAC_PURPOSE, read_lines, verify_log
from signserv.host.config import Settings


@click.group("audit")
def audit_group() -> None:
    """Verify or read the hash-chained audit log."""


@audit_group.command("verify")
@click.argument("log_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def verify_command(settings: Settings, log_file: Path | None) -> None:
    """Check every record's sequence, chain link and MAC (needs the master key).

    Names the first altered, missing, reordered or torn record and exits 1. On success prints
    the record count and the head hash: keep that elsewhere to detect a cut-off tail later.
    """
    path = log_file or settings.audit.path
    verified = verify_log(path, open_home_keystore(settings).server_secret(AUDIT_MAC_PURPOSE))
    click.echo(f"audit log {path} verified: {verified.records} records, head {verified.head}")


@audit_group.command("tail")
@click.option("-n", "--lines", "count", default=20, show_default=True, type=click.IntRange(min=1))
@pass_settings
def tail_command(settings: Settings, count: int) -> None:
    """Print the newest records (JSON lines)."""
    for line in deque(read_lines(settings.audit.path), maxlen=count):
        click.echo(line.decode("utf-8", errors="replace"))
