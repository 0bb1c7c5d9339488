"""Reading secrets for the CLI: from a file, from stdin (``-``) or a no-echo prompt, never argv."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from signserv.errors import SignservError
from signserv.secret import Secret


class SecretInputError(SignservError):
    """A secret could not be read (missing file, empty content, no terminal to prompt on)."""


def read_secret(
    source: str | None, what: str, *, confirm: bool = False, interactive: bool | None = None
) -> Secret[str]:
    """Read ``what`` from a file path, ``-`` for stdin, or (``None``) a no-echo prompt on a terminal.

    Only the final line ending is removed: other white space may belong to a password (a token
    with spaces is refused by the token rules, with a message saying so). ``interactive``
    says whether a prompt may be shown; by default, whether stdin is a terminal.
    """
    if source is None:
        if not (sys.stdin.isatty() if interactive is None else interactive):
            raise SecretInputError(
                f"{what} is needed and stdin is not a terminal: pass it with a file option "
                "(a path, or - for stdin)"
            )
        value = click.prompt(what, hide_input=True, confirmation_prompt=confirm, err=True)
    elif source == "-":
        value = sys.stdin.readline()
    else:
        try:
            value = Path(source).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            # The decoder's message would quote a byte of the secret.
            raise SecretInputError(f"{what} in {source} is not UTF-8 text") from None
        except OSError as exc:
            raise SecretInputError(f"cannot read {what} from {source}: {exc.strerror}") from None
    value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise SecretInputError(f"{what} is empty")
    return Secret(value)
