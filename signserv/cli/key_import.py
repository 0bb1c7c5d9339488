"""`signserv keys import`: bring an existing P-521 key into the keystore, keeping its SKI."""

from __future__ import annotations

import json
from functools import partial
from typing import BinaryIO

import click
from cryptography.hazmat.primitives.asymmetric import ec

from keystore import KeyExists, KeyInfo
from signserv.cli.context import pass_settings
from signserv.cli.home_state import open_home_keystore
from signserv.cli.keys import (
    backend_option,
    generate_token,
    public_point,
    signservkeys_entry,
)
from signserv.host.config import Settings
from signserv.host.key_backends import default_key_kind
from signserv.host.key_import import (
    decrypt_tke_key_file,
    load_pem_private_key,
    parse_tke_key_file,
    pem_is_encrypted,
)
from signserv.secret import Secret
from signserv.secret_input import read_secret


def _load_tke_key(key_file: BinaryIO, password_file: str | None) -> ec.EllipticCurvePrivateKey:
    """Parse first, so an RSA or malformed file is refused before a password is asked for."""
    parsed = parse_tke_key_file(key_file.read())
    return decrypt_tke_key_file(parsed, read_secret(password_file, "key file password"))


def _load_pem_key(key_file: BinaryIO, password_file: str | None) -> ec.EllipticCurvePrivateKey:
    """An unencrypted PEM takes no password; an encrypted one is decrypted with it."""
    content = key_file.read()
    if not pem_is_encrypted(content):
        if password_file is not None:
            raise click.UsageError("the PEM file is not encrypted: drop --password-file")
        return load_pem_private_key(content)
    return load_pem_private_key(content, read_secret(password_file, "PEM password"))


def _report_import(info: KeyInfo, token: Secret[str], token_generated: bool, as_json: bool) -> None:
    ski = public_point(info).ski_hex()
    shown_token = token.reveal() if token_generated else None
    if as_json:
        click.echo(json.dumps({"name": info.name, "token": shown_token, "ski": ski}))
        return
    click.echo(f"imported key {info.name} with SKI {ski}: administrators using it keep working")
    if shown_token is not None:
        click.echo(f"  token: {shown_token}   (shown once: signserv does not store it)")
        click.echo(f"  SIGNSERVKEYS entry: {signservkeys_entry(info.name, token)}")


@click.command("import")
@click.argument("name")
@click.option(
    "--tke-file",
    type=click.File("rb"),
    help="A TKE CLI signature-key file of keyType p521ec (RSA files cannot be imported).",
)
@click.option(
    "--pem", "pem_file", type=click.File("rb"), help="A P-521 private key in PEM: PKCS#8 or SEC1."
)
@click.option(
    "--password-file",
    metavar="FILE",
    help="Read the key file's password from FILE (- for stdin); prompts on a terminal if absent.",
)
@click.option(
    "--token-file",
    metavar="FILE",
    help="Read the key's token from FILE (- for stdin) instead of generating one.",
)
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object {name, token, ski}.")
@pass_settings
def import_key(
    settings: Settings,
    name: str,
    tke_file: BinaryIO | None,
    pem_file: BinaryIO | None,
    password_file: str | None,
    token_file: str | None,
    backend: str | None,
    as_json: bool,
) -> None:
    """Import an existing P-521 key as NAME; its SKI stays, so installed administrators keep working.

    The key file is decrypted in memory only; the key is stored sealed like any other, or with
    --backend pkcs11 handed to the HSM, which keeps it (only an HSM-wrapped blob is stored).
    """
    if tke_file is not None and pem_file is None:
        load_key = partial(_load_tke_key, tke_file, password_file)
    elif pem_file is not None and tke_file is None:
        load_key = partial(_load_pem_key, pem_file, password_file)
    else:
        raise click.UsageError("give the key to import with one of --tke-file and --pem")
    if password_file == "-" and token_file == "-":  # noqa: S105 - "-" means stdin
        raise click.UsageError("only one of --password-file and --token-file can read stdin")
    store = open_home_keystore(settings)
    if store.status(name) is not None:
        raise KeyExists(f"a key named {name!r} already exists")
    private_key = load_key()
    token_generated = token_file is None
    token = generate_token() if token_generated else read_secret(token_file, "token")
    info = store.add_key(name, private_key, token.reveal(), backend or default_key_kind(settings))
    _report_import(info, token, token_generated, as_json)
