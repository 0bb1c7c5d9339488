"""``signserv-tke``: the TKE CLI plug-in's crypto-unit commands, signing through a signing service.

Like the plug-in it reads ``TKE_SIGNSERV_URL`` and ``$CLOUDTKEFILES`` (SIGNSERVKEYS, the DOMAINS
selection). The crypto units are those of the local emulator, whose state lives in a file under
``$CLOUDTKEFILES`` unless ``--emulator-state`` says otherwise. Every interactive choice is also
an option, so scripts never meet a prompt; without a terminal nothing is ever prompted.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

from signserv.client import (
    DEFAULT_TIMEOUT_SECONDS,
    SigningServiceClient,
    load_signservkeys,
    resolve_token,
)
from signserv.errors import SignservError
from signserv.tke.client_session import CryptoUnit, CryptoUnitSession, parse_crypto_units
from signserv.tke.emulator import DEFAULT_STATE_FILENAME, CryptoUnitEmulator, open_emulator
from signserv.tke.errors import TKEError
from signserv.tke.workflows import (
    UnitChange,
    add_administrator,
    compare_units,
    exit_imprint_mode,
    parse_ski,
    remove_administrator,
    set_thresholds,
    unit_status,
    zeroize,
)
from signserv.tke.workflows_selection import (
    parse_unit_numbers,
    read_selected_ids,
    write_selection,
)
from signserv.tke.workflows_signers import KeyRing


class UsageProblem(TKEError):
    """The command needs something the user did not give and cannot be asked for."""


def _ask_without_echo(prompt: str) -> str:
    """A no-echo prompt (click's, so tests can drive it) for a token left out of SIGNSERVKEYS."""
    return str(click.prompt(prompt.rstrip(": "), hide_input=True, type=str, err=True))


@dataclass
class Invocation:
    """What the top-level options decided; commands build their resources from it."""

    interactive: bool = field(default_factory=sys.stdin.isatty)
    verbose: bool = False
    files: Path | None = None
    signserv_url: str | None = None
    emulator_state: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    ca_bundle: Path | None = None

    def files_directory(self) -> Path:
        """``$CLOUDTKEFILES``, which must be set and exist."""
        if self.files is None:
            raise UsageProblem(
                "CLOUDTKEFILES is not set: point it at the directory that holds SIGNSERVKEYS"
            )
        if not self.files.is_dir():
            raise UsageProblem(f"CLOUDTKEFILES directory {self.files} does not exist")
        return self.files

    def emulator(self) -> CryptoUnitEmulator:
        """The emulated service instance, its state file under $CLOUDTKEFILES by default."""
        state = self.emulator_state or self.files_directory() / DEFAULT_STATE_FILENAME
        return open_emulator(state)

    def key_ring(self) -> KeyRing:
        """SIGNSERVKEYS keys used through the service at TKE_SIGNSERV_URL."""
        if not self.signserv_url:
            raise UsageProblem(
                "TKE_SIGNSERV_URL is not set: signserv-tke signs every command through a "
                "signing service"
            )
        client = SigningServiceClient(
            self.signserv_url, timeout=self.timeout, ca_bundle=self.ca_bundle
        )
        entries = load_signservkeys(self.files_directory())
        return KeyRing(
            client,
            entries,
            token_for=lambda entry: resolve_token(
                entry, interactive=self.interactive, ask=_ask_without_echo
            ),
        )

    def ask(self, prompt: str, *, option: str) -> str:
        """Prompt on a terminal; otherwise say which option to pass instead."""
        if not self.interactive:
            raise UsageProblem(f"stdin is not a terminal: pass {option}")
        return str(click.prompt(prompt, type=str, err=True))

    def confirm(self, question: str, *, assume_yes: bool) -> None:
        """Go on only after a yes on the terminal, or with --yes."""
        if assume_yes:
            return
        if not self.interactive:
            raise UsageProblem("stdin is not a terminal: pass --yes to confirm")
        if not click.confirm(question, default=False, err=True):
            raise UsageProblem("cancelled; nothing was changed")


@dataclass(frozen=True)
class Targets:
    """All crypto units of the instance, and the selected ones as sessions."""

    units: list[CryptoUnit]
    selected_ids: set[str]
    sessions: list[CryptoUnitSession]


def _targets(invocation: Invocation) -> Targets:
    emulator = invocation.emulator()
    units = parse_crypto_units(emulator.list_crypto_units())
    selected = read_selected_ids(invocation.files_directory(), units)
    # The emulator's OA root stands in for the IBM roots real crypto units chain up to (§3.9).
    anchors = dict([emulator.oa_trust_anchor()])
    sessions = [
        CryptoUnitSession(emulator, unit, anchors) for unit in units if unit.hsm_id in selected
    ]
    return Targets(units=units, selected_ids=selected, sessions=sessions)


def _print_json(document: object) -> None:
    click.echo(json.dumps(document, indent=2))


def _print_changes(action: str, changes: Sequence[UnitChange]) -> None:
    for change in changes:
        signed = (
            f"signed by: {', '.join(change.signed_by)}"
            if change.signed_by
            else "no signature needed (imprint mode)"
        )
        click.echo(f"{action} in crypto unit {change.location}; {signed}")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
yes_option = click.option("--yes", "assume_yes", is_flag=True, help="Do not ask to confirm.")
sign_with_option = click.option(
    "--sign-with",
    "signing_keys",
    multiple=True,
    metavar="KEY",
    help="SIGNSERVKEYS key allowed to sign (repeatable); default: any installed one.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Emulator state file [env SIGNSERV_TKE_EMULATOR_STATE; "
    f"default $CLOUDTKEFILES/{DEFAULT_STATE_FILENAME}].",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds to wait for the signing service.",
)
@click.option(
    "--ca-bundle",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CA certificates that sign the signing service's TLS certificate.",
)
@click.pass_obj
def cli(
    invocation: Invocation,
    verbose: bool,
    signserv_url: str | None,
    files: Path | None,
    emulator_state: Path | None,
    timeout: float,
    ca_bundle: Path | None,
) -> None:
    """Administer crypto units with administrator keys held by a signing service."""
    invocation.verbose = verbose
    invocation.signserv_url = signserv_url
    invocation.files = files
    invocation.emulator_state = emulator_state
    invocation.timeout = timeout
    invocation.ca_bundle = ca_bundle


def _unit_rows(targets: Targets) -> list[dict[str, object]]:
    return [
        {
            "number": number,
            "selected": unit.hsm_id in targets.selected_ids,
            "location": unit.location_text,
            "type": unit.unit_type,
            "hsm_id": unit.hsm_id,
        }
        for number, unit in enumerate(targets.units, start=1)
    ]


def _show_units(targets: Targets) -> None:
    click.echo(f"{'CRYPTO UNIT NUM':<18}{'SELECTED':<11}{'TYPE':<13}LOCATION")
    for row in _unit_rows(targets):
        selected = "true" if row["selected"] else "false"
        click.echo(f"{row['number']!s:<18}{selected:<11}{row['type']!s:<13}{row['location']}")


@cli.command("cryptounits")
@json_option
@click.pass_obj
def cryptounits(invocation: Invocation, as_json: bool) -> None:
    """Display the crypto units and which are selected."""
    targets = _targets(invocation)
    if as_json:
        _print_json(_unit_rows(targets))
    else:
        _show_units(targets)


def _change_selection(invocation: Invocation, units_text: str | None, *, add: bool) -> None:
    targets = _targets(invocation)
    if units_text is None:
        _show_units(targets)
        verb = "added to" if add else "removed from"
        units_text = invocation.ask(
            f"Enter a list of crypto unit numbers to be {verb} the selected crypto unit list",
            option="--units",
        )
    numbers = parse_unit_numbers(units_text, len(targets.units))
    chosen = {targets.units[number - 1].hsm_id for number in numbers}
    selected = targets.selected_ids | chosen if add else targets.selected_ids - chosen
    write_selection(invocation.files_directory(), targets.units, selected)
    _show_units(Targets(targets.units, selected, []))


units_option = click.option("--units", metavar="NUMBERS", help='Crypto unit numbers, e.g. "1 2".')


@cli.command("cryptounit-add")
@units_option
@click.pass_obj
def cryptounit_add(invocation: Invocation, units: str | None) -> None:
    """Add crypto units to the selection."""
    _change_selection(invocation, units, add=True)


@cli.command("cryptounit-rm")
@units_option
@click.pass_obj
def cryptounit_rm(invocation: Invocation, units: str | None) -> None:
    """Remove crypto units from the selection."""
    _change_selection(invocation, units, add=False)


@cli.command("sigkeys")
@json_option
@click.pass_obj
def sigkeys(invocation: Invocation, as_json: bool) -> None:
    """List SIGNSERVKEYS keys and their SKIs."""
    key_ring = invocation.key_ring()
    rows = [
        {"number": number, "key": key, "ski": key_ring.signer(key).ski.hex()}
        for number, key in enumerate(key_ring.key_names, start=1)
    ]
    if as_json:
        _print_json(rows)
        return
    click.echo(f"{'KEY NUM':<9}{'KEY':<34}SKI")
    for row in rows:
        click.echo(f"{row['number']!s:<9}{row['key']!s:<34}{row['ski']}")


@cli.command("cryptounit-admins")
@json_option
@click.pass_obj
def cryptounit_admins(invocation: Invocation, as_json: bool) -> None:
    """List administrators and thresholds of the selected units."""
    statuses = [unit_status(session) for session in _targets(invocation).sessions]
    if as_json:
        _print_json([asdict(status) for status in statuses])
        return
    for status in statuses:
        click.echo(f"\nCRYPTO UNIT: {status.location} ({status.unit_type})")
        click.echo(
            f"signature threshold: {status.signature_threshold}   "
            f"revocation threshold: {status.revocation_threshold}"
            + ("   (imprint mode)" if status.imprint_mode else "")
        )
        if not status.administrators:
            click.echo("No administrators are installed.")
        for admin in status.administrators:
            click.echo(f"  {admin.name:<32}{admin.ski}")


def _choose_key(invocation: Invocation, key_ring: KeyRing, key: str | None) -> str:
    if key is not None:
        return key
    names = key_ring.key_names
    for number, name in enumerate(names, start=1):
        click.echo(f"{number:<9}{name}")
    answer = invocation.ask(
        "Enter the number of the signature key to add as administrator", option="--key"
    )
    return names[parse_unit_numbers(answer, len(names))[0] - 1]


@cli.command("cryptounit-admin-add")
@click.option("--key", metavar="KEY", help="SIGNSERVKEYS key of the new administrator.")
@click.option("--name", metavar="NAME", help="Administrator name, at most 30 bytes.")
@sign_with_option
@click.pass_obj
def cryptounit_admin_add(
    invocation: Invocation, key: str | None, name: str | None, signing_keys: tuple[str, ...]
) -> None:
    """Add an administrator to the selected units."""
    targets = _targets(invocation)
    key_ring = invocation.key_ring()
    chosen_key = _choose_key(invocation, key_ring, key)
    admin_name = name if name is not None else invocation.ask("Administrator name", option="--name")
    changes = add_administrator(
        targets.sessions,
        key_ring,
        key=chosen_key,
        name=admin_name,
        signing_keys=signing_keys or None,
    )
    _print_changes(f"Administrator {admin_name!r} ({chosen_key}) added", changes)


@cli.command("cryptounit-admin-rm")
@click.option("--ski", metavar="SKI", help="SKI (64 hex characters) of the administrator.")
@sign_with_option
@yes_option
@click.pass_obj
def cryptounit_admin_rm(
    invocation: Invocation, ski: str | None, signing_keys: tuple[str, ...], assume_yes: bool
) -> None:
    """Remove an administrator from the selected units."""
    targets = _targets(invocation)
    if ski is None:
        for session in targets.sessions:
            for admin in unit_status(session).administrators:
                click.echo(f"{session.unit.location_text}  {admin.name:<32}{admin.ski}")
        ski = invocation.ask("Enter the SKI of the administrator to remove", option="--ski")
    administrator = parse_ski(ski)
    invocation.confirm(
        f"Remove administrator {administrator.hex()} from the selected crypto units?",
        assume_yes=assume_yes,
    )
    changes = remove_administrator(
        targets.sessions,
        invocation.key_ring(),
        ski=administrator,
        signing_keys=signing_keys or None,
    )
    _print_changes(f"Administrator {administrator.hex()} removed", changes)


def _threshold(invocation: Invocation, value: int | None, what: str) -> int:
    if value is not None:
        return value
    answer = invocation.ask(f"New {what} threshold (1-8)", option=f"--{what}")
    try:
        return int(answer)
    except ValueError:
        raise UsageProblem(f"{answer!r} is not a number") from None


@cli.command("cryptounit-thrhld-set")
@click.option("--signature", type=int, help="New signature threshold (1-8).")
@click.option("--revocation", type=int, help="New revocation threshold (1-8).")
@sign_with_option
@click.pass_obj
def cryptounit_thrhld_set(
    invocation: Invocation,
    signature: int | None,
    revocation: int | None,
    signing_keys: tuple[str, ...],
) -> None:
    """Set signature and revocation thresholds (leaves imprint mode)."""
    targets = _targets(invocation)
    changes = set_thresholds(
        targets.sessions,
        invocation.key_ring(),
        signature=_threshold(invocation, signature, "signature"),
        revocation=_threshold(invocation, revocation, "revocation"),
        signing_keys=signing_keys or None,
    )
    _print_changes("Thresholds set", changes)


@cli.command("cryptounit-exit-impr")
@sign_with_option
@click.pass_obj
def cryptounit_exit_impr(invocation: Invocation, signing_keys: tuple[str, ...]) -> None:
    """Exit imprint mode (thresholds 1 and 1)."""
    targets = _targets(invocation)
    changes = exit_imprint_mode(
        targets.sessions, invocation.key_ring(), signing_keys=signing_keys or None
    )
    _print_changes("Imprint mode exited", changes)


@cli.command("cryptounit-compare")
@json_option
@click.pass_obj
def cryptounit_compare(invocation: Invocation, as_json: bool) -> None:
    """Compare the settings of the selected units."""
    statuses = [unit_status(session) for session in _targets(invocation).sessions]
    differences = compare_units(statuses)
    if as_json:
        _print_json({"units": [asdict(status) for status in statuses], "differences": differences})
        return
    for status in statuses:
        click.echo(
            f"{status.location}  thresholds {status.signature_threshold}/"
            f"{status.revocation_threshold}  admins {len(status.administrators)}  "
            f"current MK {status.current_mk_status} {status.current_mkvp[:16]}  "
            f"new MK {status.new_mk_status} {status.new_mkvp[:16]}"
        )
    click.echo("\n".join(differences) or "The selected crypto units are configured the same.")


@cli.command("cryptounit-zeroize")
@sign_with_option
@yes_option
@click.pass_obj
def cryptounit_zeroize(
    invocation: Invocation, signing_keys: tuple[str, ...], assume_yes: bool
) -> None:
    """Zeroize the selected units (back to imprint mode)."""
    targets = _targets(invocation)
    invocation.confirm(
        "Zeroize the selected crypto units? Administrators and master keys are lost.",
        assume_yes=assume_yes,
    )
    changes = zeroize(targets.sessions, invocation.key_ring(), signing_keys=signing_keys or None)
    _print_changes("Zeroized", changes)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: click reports usage errors, our errors print ``error: ...``."""
    invocation = Invocation()
    try:
        cli.main(args=argv, prog_name="signserv-tke", obj=invocation)
    except (SignservError, OSError) as exc:
        if invocation.verbose:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


# Registers the master-key and instance-wide commands on the group above.
from signserv.tke import cli_instance_setup, cli_master_keys  # noqa: E402, F401
