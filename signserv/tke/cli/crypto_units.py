"""``signserv-tke`` commands on the selected crypto units: selection, administrators, thresholds."""

from __future__ import annotations

from dataclasses import asdict

import click

from signserv.tke.cli.invocation import Invocation, Targets, UsageProblem, select_targets
from signserv.tke.cli.options import (
    json_option,
    print_changes,
    print_json,
    sign_with_option,
    units_option,
    yes_option,
)
from signserv.tke.client.selection import parse_unit_numbers, write_selection
from signserv.tke.client.signers import KeyRing
from signserv.tke.client.workflows import (
    add_administrator,
    compare_units,
    exit_imprint_mode,
    parse_ski,
    remove_administrator,
    set_thresholds,
    unit_status,
    zeroize,
)


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


@click.command("cryptounits")
@json_option
@click.pass_obj
def cryptounits(invocation: Invocation, as_json: bool) -> None:
    """Display the crypto units and which are selected."""
    targets = select_targets(invocation)
    if as_json:
        connection = invocation.connection()
        state = connection.emulator_state
        print_json(
            {
                "instance_id": connection.instance_id,
                "endpoint": connection.endpoint,
                "emulator_state": None if state is None else str(state),
                "crypto_units": _unit_rows(targets),
            }
        )
    else:
        click.echo(f"Crypto units of the {invocation.connection().description}")
        _show_units(targets)


def _change_selection(invocation: Invocation, units_text: str | None, *, add: bool) -> None:
    targets = select_targets(invocation)
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


@click.command("cryptounit-add")
@units_option
@click.pass_obj
def cryptounit_add(invocation: Invocation, units: str | None) -> None:
    """Add crypto units to the selection."""
    _change_selection(invocation, units, add=True)


@click.command("cryptounit-rm")
@units_option
@click.pass_obj
def cryptounit_rm(invocation: Invocation, units: str | None) -> None:
    """Remove crypto units from the selection."""
    _change_selection(invocation, units, add=False)


@click.command("sigkeys")
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
        print_json(rows)
        return
    click.echo(f"{'KEY NUM':<9}{'KEY':<34}SKI")
    for row in rows:
        click.echo(f"{row['number']!s:<9}{row['key']!s:<34}{row['ski']}")


@click.command("cryptounit-admins")
@json_option
@click.pass_obj
def cryptounit_admins(invocation: Invocation, as_json: bool) -> None:
    """List administrators and thresholds of the selected units."""
    statuses = [unit_status(session) for session in select_targets(invocation).sessions]
    if as_json:
        print_json([asdict(status) for status in statuses])
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


@click.command("cryptounit-admin-add")
@click.option("--key", metavar="KEY", help="SIGNSERVKEYS key of the new administrator.")
@click.option("--name", metavar="NAME", help="Administrator name, at most 30 bytes.")
@sign_with_option
@click.pass_obj
def cryptounit_admin_add(
    invocation: Invocation, key: str | None, name: str | None, signing_keys: tuple[str, ...]
) -> None:
    """Add an administrator to the selected units."""
    targets = select_targets(invocation)
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
    print_changes(f"Administrator {admin_name!r} ({chosen_key}) added", changes)


@click.command("cryptounit-admin-rm")
@click.option("--ski", metavar="SKI", help="SKI (64 hex characters) of the administrator.")
@sign_with_option
@yes_option
@click.pass_obj
def cryptounit_admin_rm(
    invocation: Invocation, ski: str | None, signing_keys: tuple[str, ...], assume_yes: bool
) -> None:
    """Remove an administrator from the selected units."""
    targets = select_targets(invocation)
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
    print_changes(f"Administrator {administrator.hex()} removed", changes)


def _threshold(invocation: Invocation, value: int | None, what: str) -> int:
    if value is not None:
        return value
    answer = invocation.ask(f"New {what} threshold (1-8)", option=f"--{what}")
    try:
        return int(answer)
    except ValueError:
        raise UsageProblem(f"{answer!r} is not a number") from None


@click.command("cryptounit-thrhld-set")
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
    targets = select_targets(invocation)
    changes = set_thresholds(
        targets.sessions,
        invocation.key_ring(),
        signature=_threshold(invocation, signature, "signature"),
        revocation=_threshold(invocation, revocation, "revocation"),
        signing_keys=signing_keys or None,
    )
    print_changes("Thresholds set", changes)


@click.command("cryptounit-exit-impr")
@sign_with_option
@click.pass_obj
def cryptounit_exit_impr(invocation: Invocation, signing_keys: tuple[str, ...]) -> None:
    """Exit imprint mode (thresholds 1 and 1)."""
    targets = select_targets(invocation)
    changes = exit_imprint_mode(
        targets.sessions, invocation.key_ring(), signing_keys=signing_keys or None
    )
    print_changes("Imprint mode exited", changes)


@click.command("cryptounit-compare")
@json_option
@click.pass_obj
def cryptounit_compare(invocation: Invocation, as_json: bool) -> None:
    """Compare the settings of the selected units."""
    statuses = [unit_status(session) for session in select_targets(invocation).sessions]
    differences = compare_units(statuses)
    if as_json:
        print_json({"units": [asdict(status) for status in statuses], "differences": differences})
        return
    for status in statuses:
        click.echo(
            f"{status.location}  thresholds {status.signature_threshold}/"
            f"{status.revocation_threshold}  admins {len(status.administrators)}  "
            f"current MK {status.current_mk_status} {status.current_mkvp[:16]}  "
            f"new MK {status.new_mk_status} {status.new_mkvp[:16]}"
        )
    click.echo("\n".join(differences) or "The selected crypto units are configured the same.")


@click.command("cryptounit-zeroize")
@sign_with_option
@yes_option
@click.pass_obj
def cryptounit_zeroize(
    invocation: Invocation, signing_keys: tuple[str, ...], assume_yes: bool
) -> None:
    """Zeroize the selected units (back to imprint mode)."""
    targets = select_targets(invocation)
    invocation.confirm(
        "Zeroize the selected crypto units? Administrators and master keys are lost.",
        assume_yes=assume_yes,
    )
    changes = zeroize(targets.sessions, invocation.key_ring(), signing_keys=signing_keys or None)
    print_changes("Zeroized", changes)


COMMANDS = (
    cryptounits,
    cryptounit_add,
    cryptounit_rm,
    sigkeys,
    cryptounit_admins,
    cryptounit_admin_add,
    cryptounit_admin_rm,
    cryptounit_thrhld_set,
    cryptounit_exit_impr,
    cryptounit_compare,
    cryptounit_zeroize,
)
