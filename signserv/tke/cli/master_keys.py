"""``signserv-tke`` master-key commands: part files (``mks``, ``mk-add``, ``mk-rm``) and the
registers of the selected crypto units (``cryptounit-mk``, ``-mk-load``, ``-commit``,
``-setimm``, ``-clrnew``, ``-clrcur``).

Registered on the ``signserv-tke`` group by :mod:`signserv.tke.cli.main`. Key-part
values and passwords come from files (``-`` for stdin) or no-echo prompts on a terminal,
never from the command line, and are never printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict

import click

from signserv.secret import Secret
from signserv.secret_input import read_secret
from signserv.tke.cli.invocation import Invocation, UsageProblem, crypto_unit_sessions
from signserv.tke.cli.options import json_option, print_changes, sign_with_option, yes_option
from signserv.tke.client.key_part_files import (
    KeyPartFile,
    create_key_part_file,
    key_part_from_hex,
    list_key_part_files,
    open_key_part_file,
    random_key_part,
    remove_key_part_file,
)
from signserv.tke.client.master_key_workflows import (
    clear_current_master_key,
    clear_new_master_key,
    commit_master_key,
    load_master_key,
    master_key_registers,
    set_master_key_immediately,
)
from signserv.tke.client.selection import parse_unit_numbers
from signserv.tke.client.workflows import UnitChange


def _show_parts(parts: Sequence[KeyPartFile]) -> None:
    click.echo(f"{'KEYNUM':<8}{'DESCRIPTION':<34}VERIFICATION PATTERN")
    for number, part in enumerate(parts, start=1):
        click.echo(f"{number:<8}{part.description:<34}{part.verification_pattern.hex()[:56]}")


def _existing_parts(invocation: Invocation) -> list[KeyPartFile]:
    parts = list_key_part_files(invocation.files_directory())
    if not parts:
        raise UsageProblem("no master key parts are stored here: create some with mk-add")
    return parts


def _chosen_parts(invocation: Invocation, numbers: str | None, *, what: str) -> list[KeyPartFile]:
    parts = _existing_parts(invocation)
    if numbers is None:
        _show_parts(parts)
        numbers = invocation.ask(f"Enter the KEYNUM of the key parts to {what}", option="--parts")
    return [parts[number - 1] for number in parse_unit_numbers(numbers, len(parts))]


@click.command("mks")
@json_option
@click.pass_obj
def mks(invocation: Invocation, as_json: bool) -> None:
    """List the master key parts stored in $CLOUDTKEFILES."""
    parts = list_key_part_files(invocation.files_directory())
    if as_json:
        rows = [
            {
                "number": number,
                "description": part.description,
                "verification_pattern": part.verification_pattern.hex(),
                "file": part.path.name,
                "created": part.created,
            }
            for number, part in enumerate(parts, start=1)
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    if not parts:
        click.echo("No master key parts are stored here.")
        return
    _show_parts(parts)


@click.command("mk-add")
@click.option("--random", "random_value", is_flag=True, help="Generate a random key part.")
@click.option("--value", "typed_value", is_flag=True, help="Type a known value (no echo).")
@click.option(
    "--value-file", metavar="FILE", help="Read a known value (64 hex digits) from FILE or -."
)
@click.option("--description", metavar="TEXT", help="What the key part is (1-64 characters).")
@click.option("--password-file", metavar="FILE", help="Read the file password from FILE or -.")
@click.pass_obj
def mk_add(
    invocation: Invocation,
    random_value: bool,
    typed_value: bool,
    value_file: str | None,
    description: str | None,
    password_file: str | None,
) -> None:
    """Create a master key part file."""
    directory = invocation.files_directory()
    if [random_value, typed_value, value_file is not None].count(True) != 1:
        raise UsageProblem("choose one of --random, --value or --value-file")
    part = (
        random_key_part()
        if random_value
        else key_part_from_hex(
            read_secret(
                value_file,
                "Key part value (64 hexadecimal digits)",
                interactive=invocation.interactive,
            )
        )
    )
    if description is None:
        description = invocation.ask("Description of the key part", option="--description")
    password = read_secret(
        password_file,
        "Password for the key part file",
        confirm=True,
        interactive=invocation.interactive,
    )
    created = create_key_part_file(directory, part, description=description, password=password)
    click.echo(f"Master key part {created.description!r} saved in {created.path.name}")
    click.echo(f"Verification pattern: {created.verification_pattern.hex()}")


@click.command("mk-rm")
@click.option("--part", "number", metavar="KEYNUM", help="Number of the key part (see mks).")
@yes_option
@click.pass_obj
def mk_rm(invocation: Invocation, number: str | None, assume_yes: bool) -> None:
    """Remove a master key part file."""
    chosen = _chosen_parts(invocation, number, what="remove")
    if len(chosen) != 1:
        raise UsageProblem("remove one key part at a time")
    part = chosen[0]
    invocation.confirm(
        f"Remove key part {part.description!r} ({part.path.name})? It cannot be used afterwards.",
        assume_yes=assume_yes,
    )
    remove_key_part_file(part)
    click.echo(f"Master key part {part.description!r} removed.")


@click.command("cryptounit-mk")
@json_option
@click.pass_obj
def cryptounit_mk(invocation: Invocation, as_json: bool) -> None:
    """Show master key registers of selected units."""
    registers = master_key_registers(crypto_unit_sessions(invocation, selected_only=True))
    if as_json:
        click.echo(json.dumps([asdict(register) for register in registers], indent=2))
        return
    for register in registers:
        click.echo(f"\nCRYPTO UNIT: {register.location} ({register.unit_type})")
        click.echo(f"  {'REGISTER':<10}{'STATUS':<19}VERIFICATION PATTERN")
        click.echo(f"  {'new':<10}{register.new_status:<19}{register.new_vp}")
        click.echo(f"  {'current':<10}{register.current_status:<19}{register.current_vp}")


def _part_values(
    invocation: Invocation, parts: Sequence[KeyPartFile], password_files: Sequence[str]
) -> list[Secret[bytes]]:
    """Open every chosen part; the n-th --password-file belongs to the n-th part."""
    if len(password_files) > len(parts):
        raise UsageProblem("more --password-file options than key parts")
    values = []
    for index, part in enumerate(parts):
        source = password_files[index] if index < len(password_files) else None
        password = read_secret(
            source,
            f"Password for key part {part.description!r}",
            interactive=invocation.interactive,
        )
        values.append(open_key_part_file(part, password))
    return values


def _report(done: str, changes: Sequence[UnitChange]) -> None:
    if not changes:
        click.echo("Every selected crypto unit is already in that state; nothing was sent.")
    print_changes(done, changes)


@click.command("cryptounit-mk-load")
@click.option("--parts", metavar="KEYNUMS", help='Key parts to combine, e.g. "1 2" (see mks).')
@click.option(
    "--password-file",
    "password_files",
    multiple=True,
    metavar="FILE",
    help="Password of each part, in --parts order (repeatable; - for stdin).",
)
@sign_with_option
@click.pass_obj
def cryptounit_mk_load(
    invocation: Invocation,
    parts: str | None,
    password_files: tuple[str, ...],
    signing_keys: tuple[str, ...],
) -> None:
    """Load the new master key register from parts."""
    sessions = crypto_unit_sessions(invocation, selected_only=True)
    chosen = _chosen_parts(invocation, parts, what="load")
    values = _part_values(invocation, chosen, password_files)
    changes = load_master_key(
        sessions, invocation.key_ring(), values, signing_keys=signing_keys or None
    )
    _report("New master key register loaded", changes)


RegisterWorkflow = Callable[..., list[UnitChange]]


def _change_registers(
    invocation: Invocation,
    workflow: RegisterWorkflow,
    signing_keys: tuple[str, ...],
    *,
    done: str,
    question: str | None = None,
    assume_yes: bool = False,
) -> None:
    """Run a register workflow on the selected units, after a confirmation if it is risky."""
    sessions = crypto_unit_sessions(invocation, selected_only=True)
    if question is not None:
        invocation.confirm(question, assume_yes=assume_yes)
    changes = workflow(sessions, invocation.key_ring(), signing_keys=signing_keys or None)
    _report(done, changes)


@click.command("cryptounit-mk-commit")
@sign_with_option
@click.pass_obj
def cryptounit_mk_commit(invocation: Invocation, signing_keys: tuple[str, ...]) -> None:
    """Commit the new master key register."""
    _change_registers(
        invocation, commit_master_key, signing_keys, done="New master key register committed"
    )


@click.command("cryptounit-mk-setimm")
@sign_with_option
@yes_option
@click.pass_obj
def cryptounit_mk_setimm(
    invocation: Invocation, signing_keys: tuple[str, ...], assume_yes: bool
) -> None:
    """Make the committed new master key current."""
    _change_registers(
        invocation,
        set_master_key_immediately,
        signing_keys,
        done="Master key set immediately",
        question="Set the new master key immediately? Key storage is not re-enciphered; keys "
        "protected by the current master key may become unusable.",
        assume_yes=assume_yes,
    )


@click.command("cryptounit-mk-clrnew")
@sign_with_option
@yes_option
@click.pass_obj
def cryptounit_mk_clrnew(
    invocation: Invocation, signing_keys: tuple[str, ...], assume_yes: bool
) -> None:
    """Clear the new master key register."""
    _change_registers(
        invocation,
        clear_new_master_key,
        signing_keys,
        done="New master key register cleared",
        question="Clear the new master key register?",
        assume_yes=assume_yes,
    )


@click.command("cryptounit-mk-clrcur")
@sign_with_option
@yes_option
@click.pass_obj
def cryptounit_mk_clrcur(
    invocation: Invocation, signing_keys: tuple[str, ...], assume_yes: bool
) -> None:
    """Clear the current master key register."""
    _change_registers(
        invocation,
        clear_current_master_key,
        signing_keys,
        done="Current master key register cleared",
        question="Clear the current master key register? Key storage it protects becomes unusable.",
        assume_yes=assume_yes,
    )


COMMANDS = (
    mks,
    mk_add,
    mk_rm,
    cryptounit_mk,
    cryptounit_mk_load,
    cryptounit_mk_commit,
    cryptounit_mk_setimm,
    cryptounit_mk_clrnew,
    cryptounit_mk_clrcur,
)
