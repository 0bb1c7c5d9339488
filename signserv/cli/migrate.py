"""`signserv migrate`: copy the keystore and audit chain to another backend, verified."""

from __future__ import annotations

from pathlib import Path

import click

from signserv.cli.context import pass_settings
from signserv.host.config import Settings, load_settings
from signserv.host.migration import migrate_keystore


@click.command("migrate")
@click.option(
    "--to-config",
    "target_config",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML settings naming the target backend (e.g. a keystore.url for PostgreSQL).",
)
@click.option(
    "--to-home",
    "target_home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Home directory of the target (default: this home).",
)
@pass_settings
def migrate_command(settings: Settings, target_config: Path, target_home: Path | None) -> None:
    """Copy this home's keystore and audit chain into the empty backend TARGET names.

    No token is needed: records move still sealed. The source is only read; the copy is checked
    record by record and its audit chain verified before this reports success. Stop the service
    first, or records written meanwhile stay behind in the source.
    """
    target = load_settings(target_home or settings.home, target_config)
    result = migrate_keystore(settings, target)
    click.echo(
        f"copied {result.keys} key(s) and {result.audit.records} audit record(s) to "
        f"{result.target}; verified, audit head {result.audit.head or '(empty)'}"
    )
    click.echo("  the source is unchanged; point the service at the target's configuration")
