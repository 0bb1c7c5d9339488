"""``signserv-tke``: the TKE CLI plug-in's crypto-unit commands, signing through a signing service.

Like the plug-in it reads ``TKE_SIGNSERV_URL`` and ``$CLOUDTKEFILES`` (SIGNSERVKEYS, the DOMAINS
selection). The crypto units are those of a service instance reached over the cloud TKE API
(``--instance-id`` and its region, or ``--api-endpoint``), or without one those of the local
emulator, whose state lives in a file under ``$CLOUDTKEFILES`` unless ``--emulator-state`` says
otherwise. Every interactive choice is also an option, so scripts never meet a prompt; without
a terminal nothing is ever prompted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from signserv.client import DEFAULT_TIMEOUT_SECONDS
from signserv.command_line import run_command_line
from signserv.errors import SignservError
from signserv.tke.cli import crypto_units, emulator_commands, instance_setup, master_keys
from signserv.tke.cli.cloud_options import TARGET_OPTIONS, CloudOptions
from signserv.tke.cli.invocation import Invocation
from signserv.tke.emulator import DEFAULT_STATE_FILENAME

_EMULATOR_STATE_HELP = (
    f"Emulator state file [env SIGNSERV_TKE_EMULATOR_STATE; "
    f"default $CLOUDTKEFILES/{DEFAULT_STATE_FILENAME}]."
)
_EMULATOR_STATE_TYPE = click.Path(dir_okay=False, path_type=Path)


def _with_target_options(group: click.Group) -> click.Group:
    for option in TARGET_OPTIONS:
        group = option(group)
    return group


@_with_target_options
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="signserv", prog_name="signserv-tke")
@click.option("--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.option(
    "--signserv-url",
    envvar="TKE_SIGNSERV_URL",
    metavar="URL",
    help="Signing-service base URL [env TKE_SIGNSERV_URL].",
)
@click.option(
    "--files",
    envvar="CLOUDTKEFILES",
    type=click.Path(file_okay=False, path_type=Path),
    help="Workstation directory with SIGNSERVKEYS [env CLOUDTKEFILES].",
)
@click.option(
    "--emulator-state",
    envvar="SIGNSERV_TKE_EMULATOR_STATE",
    type=_EMULATOR_STATE_TYPE,
    help=_EMULATOR_STATE_HELP,
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds to wait for each answer of the signing service, IAM or the TKE API.",
)
@click.option(
    "--ca-bundle",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CA certificates that sign the signing service's TLS certificate.",
)
@click.pass_obj
def cli(
    invocation: Invocation,
    /,
    verbose: bool,
    signserv_url: str | None,
    files: Path | None,
    emulator_state: Path | None,
    timeout: float,
    ca_bundle: Path | None,
    **cloud: Any,
) -> None:
    """Administer crypto units with administrator keys held by a signing service."""
    invocation.verbose = verbose
    invocation.signserv_url = signserv_url
    invocation.files = files
    invocation.emulator_state = emulator_state
    invocation.timeout = timeout
    invocation.ca_bundle = ca_bundle
    invocation.cloud = CloudOptions(**cloud)


def _remember_emulator_state(
    context: click.Context, _parameter: click.Parameter, value: Path | None
) -> None:
    if value is not None:
        context.find_object(Invocation).emulator_state = value  # type: ignore[union-attr]


def _accept_emulator_state_after_the_name(command: click.Command) -> None:
    """Accept ``--emulator-state`` after the command name too, where users tend to put it."""
    command.params.append(
        click.Option(
            ["--emulator-state"],
            type=_EMULATOR_STATE_TYPE,
            expose_value=False,
            callback=_remember_emulator_state,
            help=_EMULATOR_STATE_HELP,
        )
    )


for command in (*crypto_units.COMMANDS, *master_keys.COMMANDS, *instance_setup.COMMANDS):
    _accept_emulator_state_after_the_name(command)
    cli.add_command(command)
# Both "emulator --emulator-state F serve" and "emulator serve --emulator-state F".
_accept_emulator_state_after_the_name(emulator_commands.emulator)
_accept_emulator_state_after_the_name(emulator_commands.serve)
cli.add_command(emulator_commands.emulator)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: every error prints as ``error: ...`` (usage errors exit 2)."""
    invocation = Invocation()
    run_command_line(
        cli,
        argv,
        prog_name="signserv-tke",
        obj=invocation,
        our_errors=(SignservError, OSError),
        verbose=lambda: invocation.verbose,
    )
