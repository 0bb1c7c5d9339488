"""`signserv check URL`: run the conformance checker against any TKE signing service."""

from __future__ import annotations

from urllib.parse import urlsplit

import click

from signserv.checker import CheckSettings, render_json, render_text, run_checks
from signserv.contract import InvalidKeyName, require_key_name
from signserv.secret_input import read_secret

STDIN_SOURCE = "-"  # what read_secret takes to mean standard input


def _service_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter("must look like https://host:port", ctx, param)
    if parts.username is not None or parts.password is not None:
        raise click.BadParameter("must not carry credentials: pass tokens by file", ctx, param)
    return value


def _key_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        return None if value is None else require_key_name(value)
    except InvalidKeyName as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command("check")
@click.argument("url", callback=_service_url)
@click.option(
    "--key", required=True, metavar="NAME", callback=_key_name, help="Name of the key to check."
)
@click.option(
    "--token-file",
    metavar="FILE",
    help="File holding the key's token, or - for stdin; asked without echo when left out.",
)
@click.option(
    "--key2",
    metavar="NAME",
    callback=_key_name,
    help="A second key on the service: its token must not work for --key.",
)
@click.option("--token2-file", metavar="FILE", help="File holding --key2's token, or - for stdin.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON report.")
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="CA certificates to trust for an https URL (default: the system's).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
@click.pass_context
def check_command(
    ctx: click.Context,
    url: str,
    key: str,
    token_file: str | None,
    key2: str | None,
    token2_file: str | None,
    as_json: bool,
    ca_bundle: str | None,
    timeout: float,
) -> None:
    """Check that the signing service at URL follows the TKE signing-service contract.

    Prints one PASS/FAIL/WARN/INFO/SKIP line per check and a summary, and exits 1 when any
    check fails. It sends well under 300 requests and a wrong token only a few times.
    """
    if token2_file is not None and key2 is None:
        raise click.UsageError("--token2-file needs --key2")
    if token_file == STDIN_SOURCE and token2_file == STDIN_SOURCE:
        raise click.UsageError("only one of --token-file and --token2-file can be - (stdin)")
    settings = CheckSettings(
        base_url=url,
        key=key,
        token=read_secret(token_file, f"Token for key {key}"),
        second_key=key2,
        second_token=None if key2 is None else read_secret(token2_file, f"Token for key {key2}"),
        ca_bundle=ca_bundle,
        timeout=timeout,
    )
    report = run_checks(settings)
    click.echo(render_json(report) if as_json else render_text(report), nl=False)
    if report.failed:
        ctx.exit(1)
