"""A signing policy against the real TKE client: ``signserv-tke`` with SIGNSERVKEYS, a real
gunicorn signserv and the emulator. Keys allowed only administrator changes on one crypto
module add an administrator there; zeroize, and the same command for another module, are
refused with a 403 naming the rule, and the crypto units stay unchanged byte for byte."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from signserv.tke.cli.main import Invocation, cli
from signserv.tke.emulator import DEFAULT_STATE_FILENAME


@pytest.fixture
def keys(signserv_server: Any) -> dict[str, str]:
    """alice, bob and carol in the session's service: name -> token."""
    prefix = f"policy-{secrets.token_hex(4)}"
    return {
        f"{prefix}-{role}": signserv_server.home.create_key(f"{prefix}-{role}")
        for role in ("alice", "bob", "carol")
    }


@pytest.fixture
def run(signserv_server: Any, tmp_path: Path, keys: dict[str, str]) -> Any:
    """``signserv-tke ARGS`` in-process, every token in SIGNSERVKEYS, the emulator local."""
    entries = [{"key": name, "token": token} for name, token in keys.items()]
    (tmp_path / "SIGNSERVKEYS").write_text(json.dumps(entries))

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            list(args),
            obj=Invocation(interactive=False),
            env={"TKE_SIGNSERV_URL": signserv_server.url, "CLOUDTKEFILES": str(tmp_path)},
        )

    return invoke


def succeeded(result: Result) -> str:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def refused_by_policy(result: Result, rule: str) -> None:
    """The run failed on the service's 403 that names ``rule``."""
    assert result.exit_code != 0
    text = f"{result.output}\n{result.exception}"
    assert "403" in text and "policy_refused" in text and rule in text, text


def test_a_policy_limits_the_real_tke_client_to_admin_changes_on_one_module(
    run: Any, signserv_server: Any, keys: dict[str, str], tmp_path: Path
) -> None:
    alice, bob, carol = keys
    succeeded(run("cryptounit-admin-add", "--key", alice, "--name", "Alice"))
    succeeded(run("cryptounit-admin-add", "--key", bob, "--name", "Bob"))
    succeeded(run("cryptounit-thrhld-set", "--signature", "2", "--revocation", "2"))
    state_file = tmp_path / DEFAULT_STATE_FILENAME
    first, second = (
        unit["serial"] for unit in json.loads(state_file.read_text())["crypto_units"][:2]
    )
    for name in (alice, bob):
        signserv_server.home.run(
            "keys", "policy", name, "--allow", "administrators", "--module", first
        )

    succeeded(run("cryptounit-rm", "--units", "2 3"))
    output = succeeded(run("cryptounit-admin-add", "--key", carol, "--name", "Carol"))
    assert f"signed by: {alice}, {bob}" in output
    units = json.loads(succeeded(run("cryptounit-admins", "--json")))
    assert [admin["name"] for admin in units[0]["administrators"]] == ["Alice", "Bob", "Carol"]

    before = state_file.read_bytes()
    refused_by_policy(run("cryptounit-zeroize", "--yes"), "kind zeroize not allowed")
    assert state_file.read_bytes() == before

    succeeded(run("cryptounit-rm", "--units", "1"))
    succeeded(run("cryptounit-add", "--units", "2"))
    refused_by_policy(
        run("cryptounit-admin-add", "--key", carol, "--name", "Carol"),
        f"module {second} not allowed",
    )
    assert state_file.read_bytes() == before

    audit = (signserv_server.home.home / "audit.log").read_text().splitlines()
    refusals = [json.loads(line) for line in audit if '"policy_refused"' in line]
    assert {(record["key"], record["status"]) for record in refusals} <= {
        (alice, 403),
        (bob, 403),
    }
    assert {record["signed"]["kind"] for record in refusals} == {"zeroize", "administrators"}
