"""``signserv-tke emulator serve``: the local emulator as a TKE API server any TKE client can use.

Flask and gunicorn are imported only when the server starts, so the other commands never
load them.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import click

from signserv.secret_input import read_secret
from signserv.tke.cli.invocation import Invocation, UsageProblem
from signserv.tke.client.trust_anchors import write_trust_anchor
from signserv.tke.emulator import DEFAULT_STATE_FILENAME, open_emulator

DEFAULT_BIND = "127.0.0.1:8700"


@click.group("emulator")
def emulator() -> None:
    """The local crypto-unit emulator."""


@emulator.command("serve")
@click.option("--bind", default=DEFAULT_BIND, show_default=True, help="HOST:PORT to listen on.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--instance-id",
    metavar="GUID",
    help="Service instance id to serve (default: derived from the state file's path).",
)
@click.option(
    "--access-token-file",
    metavar="PATH",
    help="Accept exactly this bearer token (a file, or - for stdin).",
)
@click.option(
    "--iam-endpoint",
    envvar="IBMCLOUD_IAM_API_ENDPOINT",
    metavar="URL",
    help="Accept unexpired access tokens signed by this IAM's published keys "
    "[env IBMCLOUD_IAM_API_ENDPOINT].",
)
@click.option(
    "--certfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TLS certificate (PEM): serve https.",
)
@click.option(
    "--keyfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TLS private key (PEM) of --certfile.",
)
@click.option(
    "--export-oa-root",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the emulator's OA root (SKI and public point) here for clients to trust.",
)
@click.pass_obj
def serve(
    invocation: Invocation,
    bind: str,
    workers: int,
    instance_id: str | None,
    access_token_file: str | None,
    iam_endpoint: str | None,
    certfile: Path | None,
    keyfile: Path | None,
    export_oa_root: Path | None,
) -> None:
    """Serve the emulator over the cloud TKE API (GET .../hsms, POST .../hsms/<hsm_id>)."""
    # Imported here: only this command needs Flask and gunicorn.
    from signserv.tke.emulator.access_control import (
        AccessPolicy,
        FixedAccessToken,
        IamAccessTokens,
    )
    from signserv.tke.emulator.gunicorn_runner import Listener, serve_emulator
    from signserv.tke.emulator.http_api import EmulatorServerSettings

    if (certfile is None) != (keyfile is None):
        raise UsageProblem("--certfile and --keyfile go together")
    access: AccessPolicy
    if access_token_file is not None:
        access = FixedAccessToken(
            read_secret(access_token_file, "access token", option="--access-token-file")
        )
    elif iam_endpoint:
        access = IamAccessTokens(iam_endpoint)
    else:
        raise UsageProblem(
            "say which access tokens to accept: --access-token-file PATH or --iam-endpoint URL"
        )
    state = (
        invocation.emulator_state or invocation.files_directory() / DEFAULT_STATE_FILENAME
    ).resolve()
    served = open_emulator(state)
    # Created here, before any worker starts, so every worker serves the same instance.
    ski, root = served.oa_trust_anchor()
    if export_oa_root is not None:
        write_trust_anchor(export_oa_root, ski, root)
        click.echo(f"OA root written to {export_oa_root} (trust it with --trust-oa-root)")
    instance = instance_id or str(uuid.uuid5(uuid.NAMESPACE_URL, state.as_uri()))
    listener = Listener(bind=bind, workers=workers, certfile=certfile, keyfile=keyfile)
    click.echo(f"TKE API emulator for state file {state}")
    click.echo(f"  base URL:    {listener.base_url}")
    click.echo(f"  instance id: {instance}")
    click.echo(
        f"  use: signserv-tke --api-endpoint {listener.base_url} --instance-id {instance} ..."
    )
    serve_emulator(EmulatorServerSettings(state, instance, access), listener)
