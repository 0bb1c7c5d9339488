"""`signserv init`, `serve` and `demo`: setting up a home and running the service."""

from __future__ import annotations

from collections.abc import Callable

import click

from keystore import KeyNotFound
from signserv.cli.context import pass_settings
from signserv.cli.home_state import require_ready_home
from signserv.cli.keys import generate_token, public_point, signservkeys_entry
from signserv.host.config import ServerSettings, Settings
from signserv.host.home import forget_recorded_audit_log_end, initialize_home, open_keystore
from signserv.server.gunicorn_runner import check_bind_address, serve

DEMO_KEY = "demo-admin"
_DEFAULTS = ServerSettings()
_BIND_HELP = f"Address to listen on [default: server.bind in the config, else {_DEFAULTS.bind}]."


@click.command("init")
@pass_settings
def init_command(settings: Settings) -> None:
    """Create the home directory, a master key and an empty keystore. Never replaces a master key."""
    result = initialize_home(settings)
    if not result.created_keystore and settings.keystore.url is not None:
        click.echo(f"keystore {result.location} is up to date and opens with this master key")
        return
    if not result.created_keystore:
        raise click.ClickException(
            f"{settings.home} is already initialized; refusing to replace its master key"
        )
    if result.created_master_key:
        click.echo(
            f"created master key {settings.keystore.master_key_file} (back it up: "
            "without it no key can be recovered)"
        )
    click.echo(f"created keystore {result.location}")


def announce_url(settings: Settings, bind: str | None) -> Callable[[], None]:
    """What to print once the service listens: its URL, as TKE_SIGNSERV_URL wants it."""
    scheme = "https" if settings.tls.enabled else "http"
    url = f"{scheme}://{bind or settings.server.bind}"
    return lambda: click.echo(f"serving on {url}  (export TKE_SIGNSERV_URL={url})")


@click.command("serve")
@click.option("--bind", metavar="HOST:PORT", help=_BIND_HELP)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help=f"gunicorn worker processes [default: server.workers in the config, else {_DEFAULTS.workers}].",
)
@click.option(
    "--start-new-audit-chain",
    is_flag=True,
    help="The audit log was lost: forget where the keystore recorded it ended and start a new "
    "chain at record 1. Refused while the log file still holds records (move it aside first).",
)
@pass_settings
def serve_command(
    settings: Settings, bind: str | None, workers: int | None, start_new_audit_chain: bool
) -> None:
    """Run the signing service under gunicorn in the foreground."""
    require_ready_home(settings)
    if start_new_audit_chain:
        forgotten = forget_recorded_audit_log_end(settings)
        if forgotten is not None:
            click.echo(
                f"warning: starting a new audit chain in {settings.audit.path}; the old one "
                f"ended at {forgotten.describe()}",
                err=True,
            )
    serve(settings, bind, workers, on_listening=announce_url(settings, bind))


@click.command("demo")
@click.option("--bind", metavar="HOST:PORT", help=_BIND_HELP)
@pass_settings
def demo_command(settings: Settings, bind: str | None) -> None:
    """Initialize if needed, create key demo-admin if absent (printing its token once), then serve."""
    check_bind_address(bind or settings.server.bind)  # before a token is shown for nothing
    initialize_home(settings)
    store = open_keystore(settings)
    try:
        info = store.info(DEMO_KEY)
        click.echo(
            f"key {DEMO_KEY} already exists (SKI {public_point(info).ski_hex()}); its token was "
            f"printed when it was created. To start over: signserv keys delete {DEMO_KEY} --yes"
        )
    except KeyNotFound:
        token = generate_token()
        info = store.create_key(DEMO_KEY, token.reveal())
        click.echo(f"created key {DEMO_KEY} (SKI {public_point(info).ski_hex()})")
        click.echo(f"  token: {token.reveal()}   (shown once; signserv does not store it)")
        click.echo(f"  SIGNSERVKEYS: [{signservkeys_entry(DEMO_KEY, token)}]")
    store.close()
    serve(settings, bind, on_listening=announce_url(settings, bind))
