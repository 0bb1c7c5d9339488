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
    source: str | None,
    what: str,
    *,
    option: str | None = None,
    confirm: bool = False,
    interactive: bool | None = None,
) -> Secret[str]:
    """Read ``what`` from a file path, ``-`` for stdin, or (``None``) a no-echo prompt on a terminal.

    Only the final line ending is removed: other white space may belong to a password (a token
    with spaces is refused by the token rules, with a message saying so). ``interactive``
    says whether a prompt may be shown; by default, whether stdin is a terminal. Errors name
    the file by its ``option``, never by its path: a user may paste the secret itself where
    the path goes.
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
        the_file = f"the {what} file" + ("" if option is None else f" given with {option}")
        try:
            value = Path(source).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            # The decoder's message would quote a byte of the secret.
            raise SecretInputError(f"{the_file} is not UTF-8 text") from None
        except OSError as exc:
            raise SecretInputError(f"cannot read {the_file}: {exc.strerror}") from None
    value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise SecretInputError(f"{what} is empty")
    return Secret(value)
