"""`signserv audit verify|tail`: prove the audit chain, or read its newest records."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import click

from signserv.cli.context import pass_settings
from signserv.cli.home_state import open_home_keystore
from signserv.host.audit_log import AUDIT_MAC_PURPOSE, record_in_words, verify_log
from signserv.host.config import Settings
from signserv.host.home import audit_chain_location, audit_records, open_audit_chain


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
    mac_key = open_home_keystore(settings).server_secret(AUDIT_MAC_PURPOSE)
    if log_file is None:
        where, verified = (
            audit_chain_location(settings),
            open_audit_chain(settings, mac_key).verify(),
        )
    else:
        where, verified = str(log_file), verify_log(log_file, mac_key)
    click.echo(f"audit log {where} verified: {verified.records} records, head {verified.head}")


@audit_group.command("tail")
@click.option("-n", "--lines", "count", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the records as stored (JSON lines).")
@pass_settings
def tail_command(settings: Settings, count: int, as_json: bool) -> None:
    """Print the newest records, one line each, saying what each request signed.

    A signed TKE command reads as, for example, "add administrator 'Admin 2' (SKI 5f0c…) to
    domain 3 of module 93AABEC1, counter 17". The records are not verified: run `audit verify`.
    """
    for line in deque(audit_records(settings), maxlen=count):
        if as_json:
            click.echo(line.decode("utf-8", errors="replace"))
        else:
            click.echo(record_in_words(line))
