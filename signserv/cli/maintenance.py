"""`signserv master-key rotate`, `backup` and `restore`: keeping the keystore safe over time."""

from __future__ import annotations

from pathlib import Path

import click

from signserv.cli.context import pass_settings
from signserv.cli.home_state import require_ready_home
from signserv.host.config import Settings
from signserv.host.home import back_up_keystore, restore_keystore, rotate_home_master_key

# After a restore, a worker's cache may still hold a key unlocked from the replaced keystore.
RESTART_HINT = "  restart running `signserv serve` processes: their workers hold the old state"


def _keys(count: int) -> str:
    return "1 key" if count == 1 else f"{count} keys"


@click.group("master-key")
def master_key_group() -> None:
    """Manage the server master key."""


@master_key_group.command("rotate")
@pass_settings
def rotate_master_key_command(settings: Settings) -> None:
    """Replace the master key and re-seal every key under it in one transaction (no token needed)."""
    require_ready_home(settings)
    result = rotate_home_master_key(settings)
    master_key_file = settings.keystore.master_key_file
    click.echo(f"master key rotated: {_keys(result.resealed_keys)} re-sealed under a new key")
    click.echo(f"  back up the new {master_key_file} now")
    click.echo(
        f"  the previous key is kept at {result.retired_master_key_file}: backups made before "
        "now need it; move it somewhere safe (the next rotation refuses to run while it is there)"
    )
    click.echo("  running `signserv serve` workers take the new key on their next cold unlock")


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def backup_command(settings: Settings, file: Path) -> None:
    """Write a consistent snapshot of the keystore, still sealed, to the new FILE (mode 0600).

    The service may keep running. Restoring FILE needs the master key it was made under: keep a
    copy of the master key file, apart from the backups.
    """
    require_ready_home(settings)
    count = back_up_keystore(settings, file)
    click.echo(f"wrote backup {file} ({_keys(count)}, still sealed)")
    click.echo(
        f"  restoring it needs the master key {settings.keystore.master_key_file}; "
        "keep a copy of that file apart from the backup"
    )


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing keystore and every key in it.")
@click.option(
    "--master-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The master key FILE was made under (default: the home's master key).",
)
@pass_settings
def restore_command(
    settings: Settings, file: Path, force: bool, master_key_file: Path | None
) -> None:
    """Restore the keystore from a backup FILE, after checking that it is intact and opens.

    Keys are re-sealed under the home's master key; a home without a master key takes the one
    given with --master-key-file. An existing keystore is replaced only with --force.
    """
    count = restore_keystore(settings, file, master_key_file, overwrite=force)
    click.echo(f"restored {_keys(count)} from {file} into {settings.keystore.path}")
    if force:
        click.echo(RESTART_HINT)
