"""After a full workload, no token and no master key appear anywhere they could leak.

Looked for: the server's log, the audit log, every HTTP answer (bodies and headers), every CLI
output except the one designed display of a new token, every --help, exception texts and the
repr of every object that holds a secret.
"""

from __future__ import annotations

import base64
import json

import click
import psycopg
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from keystore import Argon2Runner, KeyStore, MasterKey, TokenRejected, crypto, read_master_key
from signserv import contract
from signserv.cli.main import cli
from signserv.host.config import load_settings
from signserv.host.home import open_keystore
from signserv.secret import Secret

from ..conftest import SignservHome, make_home
from ..softhsm import USER_PIN

USER_TOKEN = "user-chosen-token-0123456789"
WRONG_TOKEN = "wrong-token-0123456789abcdef"
NEW_TOKEN = "rotated-user-token-0123456789"
WRONG_PIN = "wrong-hsm-pin-0123"


def every_command_path(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the CLI as an argument path, groups included."""
    paths = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths.extend(every_command_path(command, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


def secret_forms(home: SignservHome, tokens: list[str]) -> dict[str, str]:
    """Every spelling of a secret worth looking for: master keys (current and retired), tokens."""
    forms = {}
    for key_file in (home.home / "master.key", home.home / "master.key.old"):
        if key_file.exists():
            master_text = key_file.read_text().strip()
            forms[f"{key_file.name} (base64)"] = master_text
            forms[f"{key_file.name} (hex)"] = base64.b64decode(master_text).hex()
    forms.update({f"token {index}": token for index, token in enumerate(tokens)})
    return forms


def stored_text(home: SignservHome) -> str:
    """What the backend stores, as text: the audit file, or every table of the database.

    Each row is rendered with ``repr`` (bytea as escaped bytes) and each byte column decoded as
    Latin-1 too, so a secret stored as raw text shows either way.
    """
    settings = load_settings(home.home, home.config)
    if settings.keystore.url is None:
        return (home.home / "audit.log").read_text()
    password = settings.keystore.password_file.read_text().strip()
    rendered: list[str] = []
    with psycopg.connect(settings.keystore.url, password=password) as connection:
        for table in ("keys", "meta", "auth_failures", "audit_records"):
            for row in connection.execute(f"SELECT * FROM {table}"):  # noqa: S608
                rendered.append(repr(row))
                rendered.extend(
                    bytes(value).decode("latin-1") for value in row if isinstance(value, bytes)
                )
    return "\n".join(rendered)


def test_no_secret_leaks_after_a_full_workload(start_signserv, tmp_path, backend_config) -> None:
    """On each backend; with PostgreSQL the database's rows and its password are searched too."""
    home = make_home(
        tmp_path / "hygiene", backend_config + "server:\n  access_log: true\n"
    )  # log everything
    generated = home.create_key("generated")
    token_file = tmp_path / "token"
    token_file.write_text(USER_TOKEN)
    home.run("keys", "create", "chosen", "--token-file", str(token_file))
    service = start_signserv(home)
    seen: list[str] = []

    def call(method: str, path: str, token: str, body: bytes | None = None) -> None:
        response = requests.request(
            method,
            service.url + path,
            data=body,
            headers={"Authorization": token, "Content-Type": "application/json"},
            timeout=10,
        )
        seen.append(response.text + json.dumps(dict(response.headers)))

    sign_body = contract.build_sign_request_body(b"payload")
    for token, name in ((generated, "generated"), (USER_TOKEN, "chosen")):
        call("GET", f"/keys/{name}", token)
        call("POST", f"/sign/{name}", token, sign_body)
        call("POST", f"/sign/{name}", f"Bearer {token}", sign_body)
        call("POST", f"/sign/{name}", token, b'{"hash_algorithm":"sha2-512","input":"!!"}')
        call("POST", f"/sign/{name}", token, b"{not json")
        call("GET", f"/keys/{name}x", token)
        call("GET", f"/keys/{name}", token + "x")
    for _ in range(12):
        call("POST", "/sign/chosen", WRONG_TOKEN, sign_body)
    call("GET", "/keys/bad%20name", generated)

    generated_file = tmp_path / "generated.token"
    generated_file.write_text(generated)
    # Only its output matters here: its verdict is tested elsewhere, and its timing checks may
    # vary on a loaded machine.
    checked = home.run(
        "check", service.url, "--key", "generated", "--token-file", str(generated_file), check=False
    )
    outputs = [checked.stdout + checked.stderr]
    new_token_file = tmp_path / "new.token"
    new_token_file.write_text(NEW_TOKEN)
    for arguments, must_succeed in (
        (("keys", "list", "--json"), True),
        (("keys", "show", "chosen"), True),
        (("keys", "export-public", "chosen", "--format", "spki-pem"), True),
        (("keys", "rotate-token", "chosen", "--token-file", str(generated_file)), False),
        (
            (
                "keys",
                "rotate-token",
                "chosen",
                "--token-file",
                str(token_file),
                "--new-token-file",
                str(new_token_file),
            ),
            True,
        ),
        (("keys", "create", "chosen", "--token-file", str(token_file)), False),
        (("keys", "disable", "generated"), True),
        (("keys", "enable", "generated"), True),
        (("backup", str(tmp_path / "backup.db")), True),
        (("master-key", "rotate"), True),
        (("audit", "verify"), True),
        (("audit", "tail", "-n", "200"), True),
    ):
        result = home.run(*arguments, check=False)
        assert (result.returncode == 0) == must_succeed, (arguments, result.stderr)
        outputs.append(result.stdout + result.stderr)
    call("POST", "/sign/chosen", NEW_TOKEN, sign_body)
    for path in every_command_path(cli):
        outputs.append(home.run(*path, "--help").stdout)
    service.stop()

    places = {
        "server log": service.log.read_text(),
        "stored records": stored_text(home),
        "HTTP answers": "\n".join(seen),
        "CLI output": "\n".join(outputs),
    }
    secrets = secret_forms(home, [generated, USER_TOKEN, NEW_TOKEN])
    settings = load_settings(home.home, home.config)
    if settings.keystore.password_file is not None:
        secrets["database password"] = settings.keystore.password_file.read_text().strip()
    for secret_name, secret in secrets.items():
        for place, text in places.items():
            assert secret not in text, f"{secret_name} found in the {place}"


def test_exceptions_and_reprs_hold_no_secret(tmp_path) -> None:
    home = make_home(tmp_path / "reprs")
    settings = load_settings(home.home, home.config)
    store: KeyStore = open_keystore(settings)
    store.create_key("k", USER_TOKEN)
    master_key = read_master_key(settings.keystore.master_key_file)
    master_text = master_key.to_text().strip()
    with pytest.raises(TokenRejected) as refused:
        store.unlock("k", WRONG_TOKEN)
    assert WRONG_TOKEN not in str(refused.value) and WRONG_TOKEN not in repr(refused.value)
    unlocked = store.unlock("k", USER_TOKEN)
    for holder in (master_key, unlocked, Secret(USER_TOKEN), settings, store, MasterKey.generate()):
        for text in (repr(holder), str(holder)):
            assert USER_TOKEN not in text and master_text not in text
    scalar = unlocked.signing_key.private_key.private_numbers().private_value
    assert str(scalar) not in repr(unlocked) and hex(scalar)[2:] not in repr(unlocked)


def test_no_hsm_pin_token_or_wrapped_key_leaks(start_signserv, softhsm, tmp_path) -> None:
    """An HSM home: the PIN, a key's token, its wrapped blob and an imported scalar stay hidden.

    The scalar of a generated HSM key never leaves the HSM, so there is nothing to look for;
    the wrapped blob stands in for it (sealed in the record, it must show nowhere in clear).
    An imported key's scalar was once in this process: it must be nowhere on disk or in a log.
    """
    pin_file = tmp_path / "hsm-pin"
    pin_file.write_text(USER_PIN + "\n")
    home = make_home(
        tmp_path / "hsm-hygiene",
        softhsm.config(use_for_new_keys=True, pin_file=pin_file) + "server:\n  access_log: true\n",
    )
    generated = home.create_key("in-hsm")
    imported_key = ec.generate_private_key(ec.SECP521R1())
    pem = tmp_path / "imported.pem"
    pem.write_bytes(imported_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    token_file = tmp_path / "token"
    token_file.write_text(USER_TOKEN)
    imported = home.run(
        "keys", "import", "imported", "--pem", str(pem), "--token-file", str(token_file)
    )
    pem.unlink()
    outputs = [imported.stdout + imported.stderr]
    pin_file.write_text(WRONG_PIN + "\n")
    service = start_signserv(home, workers=1)
    seen: list[str] = []

    def call(method: str, path: str, token: str) -> None:
        body = contract.build_sign_request_body(b"payload") if method == "POST" else None
        response = requests.request(
            method, service.url + path, data=body, headers={"Authorization": token}, timeout=30
        )
        seen.append(response.text + json.dumps(dict(response.headers)))

    call("GET", "/readyz", "")  # the wrong PIN is refused and logged: by source, never value
    call("POST", "/sign/in-hsm", generated)
    pin_file.write_text(USER_PIN + "\n")
    call("GET", "/readyz", "")
    for token, name in ((generated, "in-hsm"), (USER_TOKEN, "imported")):
        call("GET", f"/keys/{name}", token)
        call("POST", f"/sign/{name}", token)
        call("POST", f"/sign/{name}", WRONG_TOKEN)
    for arguments in (
        ("keys", "list", "--json"),
        ("keys", "show", "in-hsm"),
        ("backup", str(tmp_path / "backup.db")),
        ("audit", "tail", "-n", "200"),
    ):
        result = home.run(*arguments)
        outputs.append(result.stdout + result.stderr)
    for path in every_command_path(cli):
        outputs.append(home.run(*path, "--help").stdout)
    service.stop()

    settings = load_settings(home.home, home.config)
    store = open_keystore(settings)
    sealed = store.records.sealed("in-hsm")
    assert sealed is not None
    wrapped = crypto.unseal_hsm_wrapped_key(
        "in-hsm",
        sealed.sealed,
        generated,
        read_master_key(settings.keystore.master_key_file),
        Argon2Runner(settings.kdf.parameters(), settings.kdf.max_concurrent),
    )
    scalar = imported_key.private_numbers().private_value
    files = [path for path in (*home.home.rglob("*"), tmp_path / "backup.db") if path.is_file()]
    places = {
        "server log": service.log.read_text(),
        "HTTP answers": "\n".join(seen),
        "CLI output": "\n".join(outputs),
        **{f"file {path}": path.read_bytes().decode("latin-1") for path in files},
    }
    assert "refused the user PIN from file" in places["server log"]
    assert all('"signature"' in answer for answer in seen[4::3]), "the workload did not sign"
    secrets = {
        "the HSM user PIN": USER_PIN,
        "a refused PIN": WRONG_PIN,
        "the HSM key's token": generated,
        "the imported key's token": USER_TOKEN,
        "the wrapped blob (hex)": wrapped.hex(),
        "the wrapped blob (base64)": base64.b64encode(wrapped).decode(),
        "the wrapped blob (raw)": wrapped.decode("latin-1"),
        "the imported scalar (hex)": f"{scalar:0132x}",
        "the imported scalar (decimal)": str(scalar),
        "the imported scalar (raw)": scalar.to_bytes(66, "big").decode("latin-1"),
    }
    for secret_name, secret in secrets.items():
        for place, text in places.items():
            assert secret not in text, f"{secret_name} found in the {place}"
