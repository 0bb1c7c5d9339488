"""How both command-line tools end: every error as ``error: message``, and one exit-code rule.

Usage errors (a wrong option or argument) exit 2 with a pointer to ``--help``; every other
error exits 1; ``--verbose`` adds the traceback of our own errors. ``signserv`` and
``signserv-tke`` share this so that scripts can rely on the same contract from both.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

import click


def run_command_line(
    group: click.Group,
    argv: Sequence[str] | None,
    *,
    prog_name: str,
    obj: object,
    our_errors: tuple[type[Exception], ...],
    verbose: Callable[[], bool],
) -> NoReturn:
    """Run ``group`` and exit with its status, printing any error the one way both tools do."""
    try:
        status = group.main(
            args=None if argv is None else list(argv),
            prog_name=prog_name,
            standalone_mode=False,
            obj=obj,
        )
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            click.echo(f"(see `{exc.ctx.command_path} --help`)", err=True)
        sys.exit(exc.exit_code)
    except our_errors as exc:
        if verbose():
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)
