"""Options and output helpers that several ``signserv-tke`` commands share."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from signserv.tke.client.workflows import UnitChange

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
yes_option = click.option("--yes", "assume_yes", is_flag=True, help="Do not ask to confirm.")
sign_with_option = click.option(
    "--sign-with",
    "signing_keys",
    multiple=True,
    metavar="KEY",
    help="SIGNSERVKEYS key allowed to sign (repeatable); default: any installed one.",
)
units_option = click.option("--units", metavar="NUMBERS", help='Crypto unit numbers, e.g. "1 2".')


def print_json(document: object) -> None:
    click.echo(json.dumps(document, indent=2))


def print_changes(action: str, changes: Sequence[UnitChange]) -> None:
    for change in changes:
        signed = (
            f"signed by: {', '.join(change.signed_by)}"
            if change.signed_by
            else "no signature needed (imprint mode)"
        )
        click.echo(f"{action} in crypto unit {change.location}; {signed}")
