"""`signserv keys ...`: the key lifecycle on the host (DESIGN §4). No token is ever needed to list."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import click
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from foundation import key_name_problem, write_private_file
from keystore import KeyExists, KeyInfo, KeyNotFound, KeyStore
from signserv.cli.context import pass_settings
from signserv.cli.home_state import open_home_keystore
from signserv.cli.key_policy import policy_command, policy_lines, policy_record
from signserv.contract import PublicPoint, b64encode, encode_public_key
from signserv.host.config import Settings
from signserv.host.key_backends import KEY_KINDS, default_key_kind
from signserv.secret import Secret
from signserv.secret_input import read_secret

GENERATED_TOKEN_BYTES = 32  # 256 bits of randomness (DESIGN §3)


def generate_token() -> Secret[str]:
    """A fresh 256-bit token, URL-safe base64 (43 characters)."""
    return Secret(secrets.token_urlsafe(GENERATED_TOKEN_BYTES))


def public_point(info: KeyInfo) -> PublicPoint:
    """The TKE client's view of a stored key's public point."""
    return PublicPoint.from_uncompressed(info.public_point)


def describe(info: KeyInfo) -> dict[str, object]:
    """The public facts of a key, as `keys list/show --json` print them."""
    point = public_point(info)
    return {
        "name": info.name,
        "ski": point.ski_hex(),
        "state": "enabled" if info.enabled else "disabled",
        "created_at": info.created_at,
        "last_used_at": info.last_used_at,
        "publickey": b64encode(encode_public_key(point)),
        "backend": info.kind,
    }


def signservkeys_entry(name: str, token: Secret[str]) -> str:
    """One element of the TKE CLI's SIGNSERVKEYS file for this key."""
    return json.dumps({"key": name, "token": token.reveal()})


@click.group("keys")
def keys_group() -> None:
    """Create, inspect, disable and delete signing keys, and set their signing policies."""


keys_group.add_command(policy_command)


backend_option = click.option(
    "--backend",
    type=click.Choice(KEY_KINDS),
    help="Where the private key lives: software (sealed in the keystore) or pkcs11 (the "
    "configured HSM). Default: pkcs11 when 'pkcs11.use_for_new_keys' is true, else software.",
)


@keys_group.command("create")
@click.argument("name")
@click.option(
    "--token-file", help="Read the key's token from FILE (- for stdin) instead of generating one."
)
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object {name, token, ski}.")
@pass_settings
def create_key(
    settings: Settings, name: str, token_file: str | None, backend: str | None, as_json: bool
) -> None:
    """Generate a new P-521 key NAME. A generated token is printed once and never stored."""
    generated = token_file is None
    token = generate_token() if generated else read_secret(token_file, "token")
    kind = backend or default_key_kind(settings)
    info = open_home_keystore(settings).create_key(name, token.reveal(), kind)
    ski = public_point(info).ski_hex()
    if as_json:
        shown = token.reveal() if generated else None
        click.echo(json.dumps({"name": info.name, "token": shown, "ski": ski}))
        return
    click.echo(f"created key {info.name} ({info.kind})")
    click.echo(f"  SKI: {ski}")
    if generated:
        click.echo(f"  token: {token.reveal()}")
        click.echo("  (shown once: signserv stores no token and cannot show it again)")
        click.echo(f"  SIGNSERVKEYS entry: {signservkeys_entry(info.name, token)}")


def _require_absent(store: KeyStore, names: tuple[str, ...]) -> None:
    """Refuse before creating anything if a name is repeated or already taken."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise click.UsageError(f"key name given twice: {', '.join(repeated)}")
    for name in names:
        problem = key_name_problem(name)
        if problem is not None:
            raise click.UsageError(f"{name!r}: {problem}")
        try:
            store.info(name)
        except KeyNotFound:
            continue
        raise KeyExists(
            f"key {name!r} already exists; its token was shown only when it was created, so "
            "it cannot go into a new SIGNSERVKEYS file: choose other names (or add "
            f'{{"key": "{name}"}} to the file by hand, and the TKE CLI asks for the token)'
        )


def _create_keys_and_file(store: KeyStore, names: tuple[str, ...], file: Path) -> list[KeyInfo]:
    """Create every key and write ``file``, or neither: a key whose token went nowhere is deleted."""
    created: list[KeyInfo] = []
    entries: list[dict[str, str]] = []
    try:
        for name in names:
            token = generate_token()
            created.append(store.create_key(name, token.reveal()))
            entries.append({"key": name, "token": token.reveal()})
        document = json.dumps(entries, indent=2) + "\n"
        write_private_file(file, document.encode("ascii"), replace=False)
    except BaseException:
        for info in created:
            store.delete_key(info.name)
        raise
    return created


@keys_group.command("signservkeys")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@pass_settings
def create_signservkeys(settings: Settings, file: Path, names: tuple[str, ...]) -> None:
    """Create keys NAME... and write their tokens to the new SIGNSERVKEYS file FILE (mode 0600).

    All or nothing: if a name exists, FILE exists or anything fails, no key is left behind
    and no file is written. The tokens are never printed; FILE is the only copy.
    """
    if file.exists():
        raise click.UsageError(
            f"{file} already exists; refusing to replace it (it may hold the only copy of "
            "other keys' tokens): move it away or name another file"
        )
    store = open_home_keystore(settings)
    _require_absent(store, names)
    try:
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        created = _create_keys_and_file(store, names, file)
    except OSError as exc:
        raise click.ClickException(
            f"cannot write {file}: {exc.strerror}; no key was created"
        ) from None
    for info in created:
        click.echo(f"created key {info.name} (SKI {public_point(info).ski_hex()})")
    click.echo(f"wrote {file} (mode 0600): {len(created)} keys with their tokens, the only copy")


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_settings
def list_keys(settings: Settings, as_json: bool) -> None:
    """List every key with its SKI and state (no token needed); --json adds each policy."""
    store = open_home_keystore(settings)
    described = [describe(info) for info in store.list_keys()]
    if as_json:
        for key in described:
            key["policy"] = policy_record(store, str(key["name"]))
        click.echo(json.dumps(described, indent=2))
        return
    if not described:
        click.echo("no keys (create one with `signserv keys create NAME`)")
        return
    click.echo(f"{'NAME':<24} {'STATE':<9} {'BACKEND':<9} {'CREATED':<26} {'LAST USED':<26} SKI")
    for key in described:
        click.echo(
            f"{key['name']!s:<24} {key['state']!s:<9} {key['backend']!s:<9} "
            f"{key['created_at']!s:<26} {key['last_used_at'] or '-'!s:<26} {key['ski']}"
        )


@keys_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_settings
def show_key(settings: Settings, name: str, as_json: bool) -> None:
    """Show one key's public facts: SKI, state, where it lives, dates, public key and signing
    policy (no token needed)."""
    store = open_home_keystore(settings)
    info = store.info(name)
    described = {**describe(info), "location": store.location(info)}
    if as_json:
        described["policy"] = policy_record(store, name)
        click.echo(json.dumps(described, indent=2))
        return
    for field, value in described.items():
        click.echo(f"{field + ':':<14} {value if value is not None else '-'}")
    first, *rest = policy_lines(store, name)
    click.echo(f"{'policy:':<14} {first}")
    for line in rest:
        click.echo(f"{'':<14} {line}")


@keys_group.command("export-public")
@click.argument("name")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["der-xy", "spki-pem"]),
    default="der-xy",
    show_default=True,
    help="der-xy: base64 DER SEQUENCE{X, Y} as GET /keys returns it; spki-pem: a standard PEM.",
)
@pass_settings
def export_public_key(settings: Settings, name: str, output_format: str) -> None:
    """Print NAME's public key (no token needed): for crypto-unit tooling or any verifier."""
    point = public_point(open_home_keystore(settings).info(name))
    if output_format == "der-xy":
        click.echo(b64encode(encode_public_key(point)))
        return
    spki = point.verifying_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    click.echo(spki.decode("ascii"), nl=False)


@keys_group.command("disable")
@click.argument("name")
@pass_settings
def disable_key(settings: Settings, name: str) -> None:
    """Refuse every request for NAME (403 after a correct token) until it is enabled again."""
    open_home_keystore(settings).set_enabled(name, False)
    click.echo(f"key {name} disabled")


@keys_group.command("enable")
@click.argument("name")
@pass_settings
def enable_key(settings: Settings, name: str) -> None:
    """Serve NAME again."""
    open_home_keystore(settings).set_enabled(name, True)
    click.echo(f"key {name} enabled")


@keys_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_settings
def delete_key(settings: Settings, name: str, yes: bool) -> None:
    """Delete NAME for good. Crypto-unit administrators that use it can no longer sign."""
    store = open_home_keystore(settings)
    store.info(name)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("refusing to delete without --yes when stdin is not a terminal")
        click.confirm(f"delete key {name} permanently?", abort=True, err=True)
    store.delete_key(name)
    click.echo(f"key {name} deleted")


@keys_group.command("rotate-token")
@click.argument("name")
@click.option(
    "--token-file", help="Read the CURRENT token from FILE (- for stdin); prompts if absent."
)
@click.option(
    "--new-token-file", help="Read the new token from FILE (- for stdin) instead of generating one."
)
@pass_settings
def rotate_token(
    settings: Settings, name: str, token_file: str | None, new_token_file: str | None
) -> None:
    """Replace NAME's token; needs the current one. The key and its SKI stay the same."""
    if token_file == "-" and new_token_file == "-":  # noqa: S105 - "-" means stdin
        raise click.UsageError("only one of --token-file and --new-token-file can read stdin")
    current = read_secret(token_file, "current token")
    generated = new_token_file is None
    new = generate_token() if generated else read_secret(new_token_file, "new token")
    open_home_keystore(settings).rotate_token(name, current.reveal(), new.reveal())
    click.echo(f"token of key {name} replaced")
    if generated:
        click.echo(f"  new token: {new.reveal()}")
        click.echo("  (shown once: signserv stores no token and cannot show it again)")
