"""The manual master-key path from the command line: part files, load, commit, set immediately."""

from __future__ import annotations

import json
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from signserv.secret_input import read_secret
from signserv.tke.cli.main import Invocation, cli
from signserv.tke.client.key_part_files import list_key_part_files, open_key_part_file
from signserv.tke.wire.verification_pattern import calc_vp

from ..conftest import over_both_transports

PART_VALUE = bytes(range(32))


@pytest.fixture(scope="module")
def service_keys(signserv_server: Any) -> dict[str, str]:
    """Two keys of the session's signing service, created for this module: name -> token."""
    prefix = f"mkcli-{secrets.token_hex(4)}"
    return {f"{prefix}-{n}": signserv_server.home.create_key(f"{prefix}-{n}") for n in "ab"}


@pytest.fixture
def workstation(tmp_path: Path, service_keys: dict[str, str]) -> Path:
    """$CLOUDTKEFILES with SIGNSERVKEYS, a known part value and two password files."""
    entries = [{"key": name, "token": token} for name, token in service_keys.items()]
    (tmp_path / "SIGNSERVKEYS").write_text(json.dumps(entries))
    (tmp_path / "value.hex").write_text(PART_VALUE.hex())
    (tmp_path / "alice.password").write_text("alice's long password\n")
    (tmp_path / "bob.password").write_text("bob's long password\n")
    return tmp_path


def cli_runner(
    url: str, cloudtkefiles: Path, tke_api: dict[str, str] | None = None
) -> Callable[..., Result]:
    """``signserv-tke ARGS`` run in-process, as on a terminal or not, with the plug-in's env
    (and ``tke_api``'s, to reach the crypto units over HTTP)."""

    def invoke(*args: str, terminal: bool = False, typed: str | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            list(args),
            obj=Invocation(interactive=terminal),
            input=typed,
            env={"TKE_SIGNSERV_URL": url, "CLOUDTKEFILES": str(cloudtkefiles), **(tke_api or {})},
        )

    return invoke


def succeeded(result: Result) -> str:
    """The output of a run that must have succeeded."""
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


@pytest.fixture
def run(signserv_server: Any, workstation: Path, tke_api: dict[str, str]) -> Callable[..., Result]:
    """The CLI against the session's signing service and this workstation."""
    return cli_runner(signserv_server.url, workstation, tke_api)


def registers(run: Any) -> list[dict[str, str]]:
    """``cryptounit-mk --json``, parsed."""
    document: list[dict[str, str]] = json.loads(succeeded(run("cryptounit-mk", "--json")))
    return document


def add_two_parts(run: Any, workstation: Path) -> None:
    """A random part (alice) and a known one (bob), each in its own file."""
    succeeded(
        run(
            "mk-add",
            "--random",
            "--description",
            "alice",
            "--password-file",
            str(workstation / "alice.password"),
        )
    )
    succeeded(
        run(
            "mk-add",
            "--value-file",
            str(workstation / "value.hex"),
            "--description",
            "bob",
            "--password-file",
            str(workstation / "bob.password"),
        )
    )


def load_parts(run: Any, directory: Path, first: str, second: str) -> Result:
    """``cryptounit-mk-load`` of parts 1 and 2 with the password files of two owners."""
    return run(
        "cryptounit-mk-load",
        "--parts",
        "1 2",
        "--password-file",
        str(directory / f"{first}.password"),
        "--password-file",
        str(directory / f"{second}.password"),
    )


@over_both_transports
def test_manual_path_mk_add_load_commit_setimm(
    run: Any, service_keys: dict[str, str], workstation: Path
) -> None:
    """Two parts loaded, committed and set immediately: equal current VPs, new registers Empty;
    no part value is ever printed."""
    alice, bob = service_keys
    succeeded(run("cryptounit-admin-add", "--key", alice, "--name", "alice"))
    succeeded(run("cryptounit-admin-add", "--key", bob, "--name", "bob"))
    succeeded(run("cryptounit-thrhld-set", "--signature", "2", "--revocation", "2"))
    add_two_parts(run, workstation)
    listing = json.loads(succeeded(run("mks", "--json")))
    assert [row["description"] for row in listing] == ["alice", "bob"]
    assert listing[1]["verification_pattern"] == calc_vp(PART_VALUE).hex()
    for row in listing:
        assert stat.S_IMODE((workstation / row["file"]).stat().st_mode) == 0o600

    outputs = [
        succeeded(load_parts(run, workstation, "alice", "bob")),
        succeeded(run("cryptounit-mk-commit")),
        succeeded(run("cryptounit-mk-commit")),
        succeeded(run("cryptounit-mk-setimm", "--yes")),
    ]
    assert "New master key register loaded in crypto unit" in outputs[0]
    assert "already in that state; nothing was sent" in outputs[2]
    assert all(PART_VALUE.hex() not in output for output in outputs)
    final = registers(run)
    assert len(final) == 3
    assert {(r["current_status"], r["new_status"]) for r in final} == {("Valid", "Empty")}
    assert len({r["current_vp"][:56] for r in final}) == 1


def test_wrong_password_stops_before_any_unit_changes(run: Any, workstation: Path) -> None:
    """A part that does not open loads nothing anywhere."""
    add_two_parts(run, workstation)
    result = load_parts(run, workstation, "bob", "bob")
    assert result.exit_code != 0
    assert "does not open key part 'alice'" in str(result.exception)


def test_prompts_are_replaced_by_options_without_a_terminal(run: Any, workstation: Path) -> None:
    """No terminal: the missing password names the option to use; nothing is written."""
    result = run("mk-add", "--random", "--description", "carol")
    assert result.exit_code != 0 and "stdin is not a terminal" in str(result.exception)
    result = run("mk-add", "--description", "carol")
    assert "--random, --value or --value-file" in str(result.exception)
    assert not list(workstation.glob("mkpart-*"))


def test_mk_rm_removes_one_part(run: Any, workstation: Path) -> None:
    """mk-rm --part N --yes deletes that file only."""
    add_two_parts(run, workstation)
    assert "removed" in succeeded(run("mk-rm", "--part", "1", "--yes"))
    assert [row["description"] for row in json.loads(succeeded(run("mks", "--json")))] == ["bob"]


def test_master_key_commands_are_refused_in_imprint_mode(run: Any, workstation: Path) -> None:
    """A fresh instance has no administrators: nothing to sign a load with."""
    add_two_parts(run, workstation)
    result = load_parts(run, workstation, "alice", "bob")
    assert "imprint mode" in str(result.exception)
    assert {r["new_status"] for r in registers(run)} == {"Empty"}


def test_typed_value_and_password_on_a_terminal(run: Any, workstation: Path) -> None:
    """On a terminal the value and password are asked for without echo, never printed."""
    password = "typed password"
    typed = f"{PART_VALUE.hex()}\nbob\n{password}\n{password}\n"
    result = run("mk-add", "--value", terminal=True, typed=typed)
    assert "saved in mkpart-" in succeeded(result)
    assert PART_VALUE.hex() not in result.output and password not in result.output
    (part,) = json.loads(succeeded(run("mks", "--json")))
    assert (part["description"], part["verification_pattern"]) == ("bob", calc_vp(PART_VALUE).hex())


def test_a_typed_password_with_surrounding_spaces_opens_with_a_password_file(
    run: Any, workstation: Path
) -> None:
    """Typed and file passwords are read alike: spaces around a typed one are kept."""
    password = "  spaced password  "
    typed = f"{password}\n{password}\n"
    value_file = str(workstation / "value.hex")
    created = run(
        "mk-add", "--value-file", value_file, "--description", "carol", terminal=True, typed=typed
    )
    succeeded(created)
    (workstation / "carol.password").write_text(f"{password}\n")
    from_file = read_secret(str(workstation / "carol.password"), "password")
    (part,) = list_key_part_files(workstation)
    assert open_key_part_file(part, from_file).reveal() == PART_VALUE
