"""`signserv audit verify|tail|checkpoint|public-key`: prove the audit chain, read it, anchor it."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path

import click

from keystore.audit_checkpoint import CheckpointVerifier
from keystore.records import VerifiedChain
from signserv.cli.context import pass_settings
from signserv.cli.home_state import open_home_keystore
from signserv.host.audit_checkpoints import (
    checkpoint_signer,
    checkpoint_writer,
    read_checkpoints,
    verify_against_checkpoints,
)
from signserv.host.audit_log import AUDIT_MAC_PURPOSE, read_lines, record_in_words, verify_log
from signserv.host.checkpoint_sinks import CheckpointSinkError
from signserv.host.config import Settings
from signserv.host.home import audit_chain_location, audit_records, open_audit_chain


@click.group("audit")
def audit_group() -> None:
    """Verify or read the hash-chained audit log, and anchor it with signed checkpoints."""


def _verifier_key(given: str) -> CheckpointVerifier:
    """``--public-key``: a vkey line, or a file holding one."""
    try:
        text = Path(given).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = given  # not a readable file: the vkey line itself
    return CheckpointVerifier.from_vkey(text)


@audit_group.command("verify")
@click.argument("log_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--checkpoints",
    "checkpoint_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file of signed checkpoints (one note after another) to hold the chain to; repeatable.",
)
@click.option(
    "--public-key",
    help="The checkpoint key's vkey line (or a file holding it), from `signserv audit "
    "public-key`: checks checkpoints without the master key (record MACs are then not checked).",
)
@pass_settings
def verify_command(
    settings: Settings,
    log_file: Path | None,
    checkpoint_files: tuple[Path, ...],
    public_key: str | None,
) -> None:
    """Check every record's sequence, chain link and MAC (needs the master key).

    Names the first altered, missing, reordered or torn record and exits 1. With --checkpoints,
    also checks each checkpoint's signature and that the chain reaches every checkpoint's
    record count with its head hash there: a cut-off tail, a rollback to an older copy, a
    chain rewritten with the audit MAC key and a forged checkpoint are each named (exit 1).
    """
    if public_key is not None and not checkpoint_files:
        raise click.UsageError("--public-key checks checkpoints: name them with --checkpoints")
    if not checkpoint_files:
        _verify_macs_only(settings, log_file)
        return
    where = str(log_file) if log_file is not None else audit_chain_location(settings)
    records: Iterable[bytes]
    if public_key is not None:
        verifier, mac_key = _verifier_key(public_key), None
        records = read_lines(log_file) if log_file is not None else audit_records(settings)
    else:
        store = open_home_keystore(settings)
        verifier = checkpoint_signer(settings, store).verifier
        mac_key = store.server_secret(AUDIT_MAC_PURPOSE)
        records = (
            read_lines(log_file)
            if log_file is not None
            else open_audit_chain(settings, mac_key).records()
        )
    checkpoints = [
        checkpoint for path in checkpoint_files for checkpoint in read_checkpoints(path, verifier)
    ]
    matched = verify_against_checkpoints(records, mac_key, checkpoints)
    checked = "links and MACs" if mac_key is not None else "links (no master key: MACs not checked)"
    click.echo(
        f"audit log {where} verified: {matched.chain.records} records, head {matched.chain.head}"
    )
    click.echo(f"{checked}; {matched.checkpoints} checkpoints by {verifier.vkey()}")
    if matched.newest is not None:
        click.echo(f"newest checkpoint matched: {matched.newest.describe()}")


def _verify_macs_only(settings: Settings, log_file: Path | None) -> None:
    mac_key = open_home_keystore(settings).server_secret(AUDIT_MAC_PURPOSE)
    verified: VerifiedChain
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


@audit_group.command("public-key")
@pass_settings
def public_key_command(settings: Settings) -> None:
    """Print the checkpoint key's verifier key (a signed-note vkey line) for third parties.

    With it, `signserv audit verify --checkpoints F --public-key KEY` checks checkpoints
    without the master key.
    """
    click.echo(checkpoint_signer(settings, open_home_keystore(settings)).verifier.vkey())


@audit_group.command("checkpoint")
@click.option("--print-only", is_flag=True, help="Print the signed checkpoint; send it to no sink.")
@pass_settings
def checkpoint_command(settings: Settings, print_only: bool) -> None:
    """Take a signed checkpoint of the audit chain now, send it to the configured sinks and print it."""
    writer = checkpoint_writer(settings, open_home_keystore(settings))
    note = writer.take()
    failures = [] if print_only else writer.deliver(note)
    click.echo(note, nl=False)
    if failures:
        raise CheckpointSinkError(
            "; ".join(str(failure) for failure in failures) + " (the other sinks, if any, have it)"
        )
