"""The `signserv` command group and its one top-level error handler."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from keystore import KeystoreError
from signserv.cli.audit import audit_group
from signserv.cli.bench import bench_command
from signserv.cli.check import check_command
from signserv.cli.key_import import import_key
from signserv.cli.keys import keys_group
from signserv.cli.maintenance import backup_command, master_key_group, restore_command
from signserv.cli.migrate import migrate_command
from signserv.cli.service import demo_command, init_command, serve_command
from signserv.command_line import run_command_line
from signserv.errors import SignservError
from signserv.host.config import CONFIG_ENV, HOME_ENV, load_settings
from signserv.host.core_dumps import forbid_core_dumps


@dataclass
class ErrorReporting:
    """What :func:`main` passes down and reads back after a failure: whether to show tracebacks."""

    verbose: bool = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="signserv", prog_name="signserv")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=HOME_ENV,
    help=f"Directory holding the keystore, master key and logs (env {HOME_ENV}; default ./var/signserv).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_ENV,
    help=f"YAML settings file, see config.example.yaml (env {CONFIG_ENV}).",
)
@click.option("--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, config_file: Path | None, verbose: bool) -> None:
    """signserv: a signing service for the IBM HPCS TKE CLI and Terraform."""
    forbid_core_dumps()  # before any command reads a token, a key or the master key
    if isinstance(ctx.obj, ErrorReporting):  # run through main(), not a test's CliRunner
        ctx.obj.verbose = verbose
    ctx.obj = load_settings(home, config_file)


keys_group.add_command(import_key)

cli.add_command(init_command)
cli.add_command(serve_command)
cli.add_command(demo_command)
cli.add_command(keys_group)
cli.add_command(check_command)
cli.add_command(audit_group)
cli.add_command(bench_command)
cli.add_command(master_key_group)
cli.add_command(backup_command)
cli.add_command(restore_command)
cli.add_command(migrate_command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error prints as `error: message` (usage errors exit 2, others 1)."""
    reporting = ErrorReporting()
    run_command_line(
        cli,
        argv,
        prog_name="signserv",
        obj=reporting,
        our_errors=(SignservError, KeystoreError),
        verbose=lambda: reporting.verbose,
    )
