"""The `signserv` CLI as scripts call it: exact surface, clear errors, secrets printed only once."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from signserv import contract

from ..conftest import SignservHome, make_home


@pytest.fixture
def home(tmp_path) -> SignservHome:
    return make_home(tmp_path)


def test_init_creates_a_private_home_and_refuses_to_run_twice(home: SignservHome) -> None:
    assert stat.S_IMODE(home.home.stat().st_mode) == 0o700
    master_key = (home.home / "master.key").read_bytes()
    again = home.run("init", check=False)
    assert again.returncode != 0
    assert "refusing to replace" in again.stderr
    assert (home.home / "master.key").read_bytes() == master_key


def test_keys_create_json_prints_name_token_and_ski(home: SignservHome) -> None:
    created = json.loads(home.run("keys", "create", "admin-1", "--json").stdout)
    assert set(created) == {"name", "token", "ski"}
    assert created["name"] == "admin-1"
    assert re.fullmatch(r"[0-9a-f]{64}", created["ski"])
    assert re.fullmatch(r"[A-Za-z0-9_\-]{43}", created["token"]), "256-bit URL-safe token"


def test_keys_create_human_output_shows_token_and_signservkeys_entry(home: SignservHome) -> None:
    output = home.run("keys", "create", "admin-1").stdout
    token = re.search(r"token: (\S+)", output).group(1)
    assert json.dumps({"key": "admin-1", "token": token}) in output


def test_token_from_stdin_is_never_printed(home: SignservHome) -> None:
    token = "my-own-token-0123456789"
    created = home.run("keys", "create", "mine", "--token-file", "-", "--json", stdin=token + "\n")
    assert token not in created.stdout + created.stderr
    assert json.loads(created.stdout)["token"] is None


def test_token_from_file(home: SignservHome, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-0123456789abc\n")
    home.run("keys", "create", "from-file", "--token-file", str(token_file))
    assert "from-file" in home.run("keys", "list").stdout


def test_short_token_is_refused_without_echo(home: SignservHome) -> None:
    result = home.run("keys", "create", "weak", "--token-file", "-", stdin="hunter2\n", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: a token must be at least")
    assert "hunter2" not in result.stderr


def test_list_and_show_need_no_token(home: SignservHome) -> None:
    created = json.loads(home.run("keys", "create", "admin-1", "--json").stdout)
    listed = json.loads(home.run("keys", "list", "--json").stdout)
    assert [(key["name"], key["ski"], key["state"]) for key in listed] == [
        ("admin-1", created["ski"], "enabled")
    ]
    shown = json.loads(home.run("keys", "show", "admin-1", "--json").stdout)
    assert shown["ski"] == created["ski"] and shown["last_used_at"] is None
    assert created["token"] not in json.dumps(listed) + json.dumps(shown)


def test_disable_enable_delete(home: SignservHome) -> None:
    home.create_key("k")
    home.run("keys", "disable", "k")
    assert json.loads(home.run("keys", "show", "k", "--json").stdout)["state"] == "disabled"
    home.run("keys", "enable", "k")
    refused = home.run("keys", "delete", "k", check=False)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    home.run("keys", "delete", "k", "--yes")
    assert json.loads(home.run("keys", "list", "--json").stdout) == []


def test_rotate_token_needs_the_current_token(home: SignservHome, tmp_path) -> None:
    token = home.create_key("k")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-right-token-000000")
    refused = home.run("keys", "rotate-token", "k", "--token-file", str(wrong), check=False)
    assert refused.returncode == 1 and "does not unlock" in refused.stderr
    rotated = home.run("keys", "rotate-token", "k", "--token-file", "-", stdin=token)
    new_token = re.search(r"new token: (\S+)", rotated.stdout).group(1)
    assert new_token != token


def test_token_is_not_prompted_for_without_a_terminal(home: SignservHome) -> None:
    home.create_key("k")
    result = home.run("keys", "rotate-token", "k", check=False)
    assert result.returncode == 1
    assert "not a terminal" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("keys", "create", "bad name"), "unreserved"),
        (("keys", "show", "absent"), "no key named 'absent'"),
        (("keys", "disable", "absent"), "no key named 'absent'"),
    ],
)
def test_errors_are_one_line_without_traceback(home, arguments, message) -> None:
    result = home.run(*arguments, check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_verbose_adds_the_traceback_to_the_one_line_error(home: SignservHome) -> None:
    """--verbose, given before the command, shows where an error came from."""
    result = home.run("--verbose", "keys", "show", "absent", check=False)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().endswith("error: no key named 'absent'")


def test_verbose_shows_the_traceback_of_a_bad_config_file(home: SignservHome) -> None:
    """The settings are read after --verbose is known, so their errors honour it too."""
    home.config.write_text("server:\n  workers: 0\n")
    quiet = home.run("keys", "list", check=False)
    verbose = home.run("--verbose", "keys", "list", check=False)
    assert quiet.returncode == verbose.returncode == 1
    assert "Traceback" not in quiet.stderr and "Traceback" in verbose.stderr
    assert "'server.workers' must be at least 1" in verbose.stderr


def test_existing_key_is_never_replaced(home: SignservHome) -> None:
    first = json.loads(home.run("keys", "create", "k", "--json").stdout)
    result = home.run("keys", "create", "k", check=False)
    assert result.returncode == 1 and "already exists" in result.stderr
    assert json.loads(home.run("keys", "show", "k", "--json").stdout)["ski"] == first["ski"]


def test_commands_on_a_missing_master_key_explain_what_to_do(home: SignservHome) -> None:
    (home.home / "master.key").unlink()
    result = home.run("keys", "list", check=False)
    assert result.returncode == 1
    assert "no master key file" in result.stderr and "SIGNSERV_MASTER_KEY_FILE" in result.stderr
    assert "restore that file from your backup" in result.stderr
    assert "run `signserv init`" not in result.stderr, "init would refuse: it is no next step"


def test_a_master_key_without_keystore_points_to_restore_and_init(home: SignservHome) -> None:
    (home.home / "keystore.db").unlink()
    result = home.run("serve", check=False)
    assert result.returncode == 1
    assert f"no keystore at {home.home / 'keystore.db'}" in result.stderr
    assert "`signserv restore BACKUP`" in result.stderr and "`signserv init`" in result.stderr


def test_the_relative_default_home_says_where_it_looked(tmp_path) -> None:
    """Run outside the directory `init` ran in, the default home is a different, missing one."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SIGNSERV_")}
    result = subprocess.run(
        [sys.executable, "-m", "signserv", "keys", "list"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"error: no signserv home in this directory: {tmp_path / 'var/signserv'}" in (
        result.stderr
    )
    assert "relative to the current directory" in result.stderr and "--home" in result.stderr
    assert not (tmp_path / "var").exists(), "looking must not create a second home"


def test_a_named_home_that_does_not_exist_is_named(tmp_path) -> None:
    missing = SignservHome(home=tmp_path / "nowhere", config=make_home(tmp_path).config)
    result = missing.run("keys", "list", check=False)
    assert result.returncode == 1
    assert f"no signserv home at {tmp_path / 'nowhere'}" in result.stderr


@pytest.mark.parametrize("flag", ["--version", "-h", "--help"])
def test_both_tools_answer_version_and_both_help_flags(home: SignservHome, flag: str) -> None:
    for tool in ("signserv", "signserv-tke"):
        result = subprocess.run(
            [str(Path(sys.executable).parent / tool), flag],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        expected = f"{tool}, version {version('signserv')}" if flag == "--version" else "Usage:"
        assert expected in result.stdout


def test_serve_help_shows_the_workers_and_bind_defaults(home: SignservHome) -> None:
    shown = " ".join(home.run("serve", "--help").stdout.split())
    assert "[default: server.workers in the config, else 2]" in shown
    assert "[default: server.bind in the config, else 127.0.0.1:8080]" in shown


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("keys", "create"), "error: Missing argument 'NAME'."),
        (("serve", "--workers", "0"), "error: Invalid value for '--workers'"),
        (("nonsense",), "error: No such command 'nonsense'."),
    ],
)
def test_usage_errors_print_error_and_exit_2(home: SignservHome, arguments, message) -> None:
    result = home.run(*arguments, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert "Error:" not in result.stderr


def test_help_shows_no_secret(home: SignservHome) -> None:
    token = home.create_key("k")
    master_key = (home.home / "master.key").read_text().strip()
    for arguments in (
        ["--help"],
        ["keys", "--help"],
        ["keys", "create", "--help"],
        ["serve", "--help"],
    ):
        shown = home.run(*arguments).stdout
        assert token not in shown and master_key not in shown


def test_export_public_key_in_both_formats_matches_the_ski(home: SignservHome, tmp_path) -> None:
    created = json.loads(home.run("keys", "create", "k", "--json").stdout)
    der_xy = home.run("keys", "export-public", "k").stdout.strip()
    point = contract.decode_public_key(contract.b64decode_strict(der_xy, what="der-xy"))
    assert point.ski_hex() == created["ski"]
    pem = home.run("keys", "export-public", "k", "--format", "spki-pem").stdout
    numbers = load_pem_public_key(pem.encode()).public_numbers()
    assert (numbers.x, numbers.y) == (point.x, point.y)


def test_signservkeys_creates_the_keys_and_a_private_file_of_their_tokens(
    home: SignservHome, tmp_path
) -> None:
    file = tmp_path / "tke-files" / "SIGNSERVKEYS"
    output = home.run("keys", "signservkeys", str(file), "admin1", "admin2").stdout
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    entries = json.loads(file.read_text())
    assert [entry["key"] for entry in entries] == ["admin1", "admin2"]
    for entry in entries:
        assert entry["token"] not in output, "the file is the only copy of each token"
        shown = json.loads(home.run("keys", "show", entry["key"], "--json").stdout)
        assert f"created key {entry['key']} (SKI {shown['ski']})" in output


@pytest.mark.parametrize(
    ("names", "status", "message"),
    [
        (("admin2", "admin1"), 1, "key 'admin1' already exists"),
        (("admin2", "admin2"), 2, "key name given twice: admin2"),
        (("admin2", "bad name"), 2, "'bad name': a key name may contain only"),
    ],
)
def test_signservkeys_refuses_loudly_and_leaves_nothing_behind(
    home: SignservHome, tmp_path, names, status, message
) -> None:
    """The README ceremony's failure mode: an existing admin1 must not silently drop out."""
    home.create_key("admin1")
    file = tmp_path / "SIGNSERVKEYS"
    result = home.run("keys", "signservkeys", str(file), *names, check=False)
    assert result.returncode == status
    assert result.stderr.startswith(f"error: {message}")
    assert not file.exists()
    listed = json.loads(home.run("keys", "list", "--json").stdout)
    assert [key["name"] for key in listed] == ["admin1"]


def test_signservkeys_never_replaces_an_existing_file(home: SignservHome, tmp_path) -> None:
    file = tmp_path / "SIGNSERVKEYS"
    file.write_text('[{"key": "earlier", "token": "the only copy of this token"}]')
    result = home.run("keys", "signservkeys", str(file), "admin1", check=False)
    assert result.returncode == 2 and "refusing to replace it" in result.stderr
    assert "the only copy" in file.read_text()
    assert json.loads(home.run("keys", "list", "--json").stdout) == []


def test_signservkeys_deletes_its_keys_when_the_file_cannot_be_written(
    home: SignservHome, tmp_path
) -> None:
    """A dangling symlink passes the existence check, so the keys are made before the write fails."""
    file = tmp_path / "SIGNSERVKEYS"
    file.symlink_to(tmp_path / "nowhere")
    result = home.run("keys", "signservkeys", str(file), "admin1", "admin2", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot write {file}: ")
    assert json.loads(home.run("keys", "list", "--json").stdout) == []
