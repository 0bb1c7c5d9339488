"""``signserv-tke`` instance-wide commands: ``auto-init``, ``auto-mk-rotate`` and ``apply FILE``.

Registered on the ``signserv-tke`` group by :mod:`signserv.tke.cli.main`. They work
on every crypto unit of the instance, whatever DOMAINS selects, as the plug-in's auto-init
and Terraform do. Problems found before any change are listed and nothing is changed; a
failure half-way names the unit and step, and running the command again continues.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import click

from signserv.client import SigningServiceClient, SignServKey, load_signservkeys, resolve_token
from signserv.secret import Secret
from signserv.tke.cli.invocation import Invocation, UsageProblem, crypto_unit_sessions
from signserv.tke.cli.options import sign_with_option, yes_option
from signserv.tke.client.auto_init import auto_init_admins, auto_initialize, auto_rotate_master_key
from signserv.tke.client.hsm_config import AdminEntry, HsmConfig, load_hsm_config
from signserv.tke.client.hsm_update import (
    CheckedConfiguration,
    ConfiguredAdmin,
    check_configuration,
    configured_admins,
    describe_update,
    update_instance,
)
from signserv.tke.client.selection import parse_unit_numbers
from signserv.tke.client.signers import KeyRing
from signserv.tke.errors import TKEError

_ADMIN_CHOICE = re.compile(r"(?P<key>[^=]+)(=(?P<name>.*))?")


class ConfigurationProblems(TKEError):
    """CheckTransition found problems (§7.3); nothing was changed. ``problems`` lists them."""

    def __init__(self, problems: Sequence[str]) -> None:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"the crypto units cannot be brought to this configuration; nothing was "
            f"changed:\n{listed}"
        )
        self.problems = list(problems)


def _require_no_problems(checked: CheckedConfiguration) -> None:
    if checked.problems:
        raise ConfigurationProblems(checked.problems)


def _hidden_prompt(prompt: str) -> str:
    return str(click.prompt(prompt.rstrip(": "), hide_input=True, type=str, err=True))


def _threshold(invocation: Invocation, value: int | None, what: str, option: str) -> int:
    if value is not None:
        return value
    answer = invocation.ask(
        f"Enter the number of signatures to be required on {what}. This must be a number "
        "between 1 and 8",
        option=option,
    )
    if not answer.strip().isdigit():
        raise UsageProblem(f"{answer!r} is not a number")
    return int(answer)


def _parse_admin_choice(text: str) -> tuple[str, str]:
    """``KEY=NAME`` (or ``KEY``, named after the key) from an ``--admin`` option."""
    match = _ADMIN_CHOICE.fullmatch(text)
    if match is None:
        raise UsageProblem(f"--admin takes KEY=NAME, not {text!r}")
    return match["key"], match["name"] or match["key"]


def _ask_admins(invocation: Invocation, key_ring: KeyRing) -> list[tuple[str, str]]:
    keys = key_ring.key_names
    click.echo(f"{'KEYNUM':<9}{'KEY':<34}SUBJECT KEY IDENTIFIER")
    for number, key in enumerate(keys, start=1):
        click.echo(f"{number:<9}{key:<34}{key_ring.signer(key).ski.hex()[:30]}...")
    answer = invocation.ask(
        "Enter the KEYNUM of the signature keys to install as administrators", option="--admin"
    )
    chosen = [keys[number - 1] for number in parse_unit_numbers(answer, len(keys))]
    return [
        (key, invocation.ask(f"Administrator name for {key} (at most 30 bytes)", option="--admin"))
        for key in chosen
    ]


@click.command("auto-init")
@click.option("--signature-threshold", type=int, help="Signatures required on commands (1-8).")
@click.option(
    "--revocation-threshold", type=int, help="Signatures required to remove an admin (1-8)."
)
@click.option(
    "--admin",
    "admins",
    multiple=True,
    metavar="KEY=NAME",
    help="SIGNSERVKEYS key to install as administrator NAME (repeatable).",
)
@click.pass_obj
def auto_init(
    invocation: Invocation,
    signature_threshold: int | None,
    revocation_threshold: int | None,
    admins: tuple[str, ...],
) -> None:
    """Initialize all units: admins, thresholds, key."""
    sessions = crypto_unit_sessions(invocation, selected_only=False)
    signature = _threshold(invocation, signature_threshold, "commands", "--signature-threshold")
    revocation = _threshold(
        invocation,
        revocation_threshold,
        "commands to remove an administrator",
        "--revocation-threshold",
    )
    key_ring = invocation.key_ring()
    chosen = [_parse_admin_choice(text) for text in admins] or _ask_admins(invocation, key_ring)
    config = HsmConfig(
        signature, revocation, tuple(AdminEntry(name=name, key=key) for key, name in chosen)
    )
    checked = check_configuration(config, lambda: auto_init_admins(key_ring, chosen), sessions)
    _require_no_problems(checked)
    auto_initialize(config, checked, sessions, click.echo)
    click.echo("\nOK\nThe service instance has been initialized.")
    click.echo(
        "To see the administrators, thresholds and master key registers, use "
        "'signserv-tke cryptounit-compare'."
    )


@click.command("auto-mk-rotate")
@sign_with_option
@yes_option
@click.pass_obj
def auto_mk_rotate(invocation: Invocation, signing_keys: tuple[str, ...], assume_yes: bool) -> None:
    """Rotate the master key of all units."""
    sessions = crypto_unit_sessions(invocation, selected_only=False)
    invocation.confirm(
        "Generate a new master key and make it current in every crypto unit?",
        assume_yes=assume_yes,
    )
    auto_rotate_master_key(
        sessions, invocation.key_ring(), click.echo, signing_keys=signing_keys or None
    )
    click.echo("\nOK\nThe master key has been rotated in every crypto unit.")


def _signing_client(invocation: Invocation) -> SigningServiceClient:
    if not invocation.signserv_url:
        raise UsageProblem("TKE_SIGNSERV_URL is not set: apply signs through a signing service")
    return SigningServiceClient(
        invocation.signserv_url, timeout=invocation.timeout, ca_bundle=invocation.ca_bundle
    )


def _apply_admins(invocation: Invocation, config: HsmConfig) -> list[ConfiguredAdmin]:
    directory = invocation.files_directory()
    listed = load_signservkeys(directory) if (directory / "SIGNSERVKEYS").exists() else []

    def token_for(entry: SignServKey) -> Secret[str]:
        return resolve_token(entry, interactive=invocation.interactive, ask=_hidden_prompt)

    return configured_admins(config, _signing_client(invocation), listed, token_for)


@click.command("apply")
@click.argument("config_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--check", "check_only", is_flag=True, help="Report problems and the plan; change nothing."
)
@click.pass_obj
def apply(invocation: Invocation, config_file: Path, check_only: bool) -> None:
    """Bring all units to a YAML hsm_config file.

    CONFIG_FILE is YAML like Terraform's hsm_config (tokens relative to its directory):

    \b
        signature_threshold: 2
        revocation_threshold: 2
        admins:
          - {name: Admin 1, key: admin1}                   # token from SIGNSERVKEYS or asked
          - {name: Admin 2, key: admin2, token_file: t2}   # or an inline token: ...

    Problems are listed and nothing changes; a second apply changes nothing.
    """
    config = load_hsm_config(config_file)
    sessions = crypto_unit_sessions(invocation, selected_only=False)
    checked = check_configuration(config, lambda: _apply_admins(invocation, config), sessions)
    _require_no_problems(checked)
    if check_only:
        click.echo(f"No problems: the crypto units can be brought to {config_file}.")
        for line in describe_update(config, checked) or ["Nothing would change."]:
            click.echo(line)
        return
    if update_instance(config, checked, sessions, click.echo):
        click.echo(f"\nOK\nThe crypto units now match {config_file}.")
    else:
        click.echo(f"No changes: the crypto units already match {config_file}.")


COMMANDS = (auto_init, auto_mk_rotate, apply)
