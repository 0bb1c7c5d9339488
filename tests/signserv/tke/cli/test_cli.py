"""``signserv-tke`` end to end: the real signing service, the emulator under $CLOUDTKEFILES."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from signserv.client import SigningServiceClient
from signserv.secret import Secret
from signserv.tke.cli.main import Invocation, cli, main
from signserv.tke.emulator import DEFAULT_STATE_FILENAME

from ..conftest import over_both_transports


@pytest.fixture(scope="module")
def service_keys(signserv_server: Any) -> dict[str, str]:
    """Three keys of the session's service, created for this module: name -> token."""
    prefix = f"cli-{secrets.token_hex(4)}"
    names = [f"{prefix}-{role}" for role in ("alice", "bob", "carol")]
    return {name: signserv_server.home.create_key(name) for name in names}


@pytest.fixture
def workstation(tmp_path: Path, service_keys: dict[str, str]) -> Path:
    """$CLOUDTKEFILES: SIGNSERVKEYS with alice's and bob's tokens; carol's is asked for."""
    alice, bob, carol = service_keys
    entries = [
        {"key": alice, "token": service_keys[alice]},
        {"key": bob, "token": service_keys[bob]},
        {"key": carol},
    ]
    (tmp_path / "SIGNSERVKEYS").write_text(json.dumps(entries))
    return tmp_path


@pytest.fixture
def run(signserv_server: Any, workstation: Path, tke_api: dict[str, str]) -> Any:
    """Run ``signserv-tke ARGS`` in-process, as on a terminal or not, with the plug-in's env."""

    def invoke(*args: str, terminal: bool = False, typed: str | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            list(args),
            obj=Invocation(interactive=terminal),
            input=typed,
            env={
                "TKE_SIGNSERV_URL": signserv_server.url,
                "CLOUDTKEFILES": str(workstation),
                **tke_api,
            },
        )

    return invoke


def succeeded(result: Result) -> str:
    """The output of a run that must have succeeded."""
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def admins_json(run: Any) -> list[dict[str, Any]]:
    """``cryptounit-admins --json``, parsed."""
    document: list[dict[str, Any]] = json.loads(succeeded(run("cryptounit-admins", "--json")))
    return document


@over_both_transports
def test_admin_ceremony_from_the_command_line(
    run: Any, service_keys: dict[str, str], workstation: Path
) -> None:
    """Three admins, thresholds 2/2, a removal by quorum, zeroize; tokens never printed."""
    alice, bob, carol = service_keys
    outputs = [
        succeeded(run("cryptounit-admin-add", "--key", alice, "--name", "Alice")),
        succeeded(run("cryptounit-admin-add", "--key", bob, "--name", "Bob")),
        succeeded(
            run(
                "cryptounit-admin-add",
                "--key",
                carol,
                "--name",
                "Carol",
                terminal=True,
                typed=service_keys[carol] + "\n",
            )
        ),
    ]
    assert "no signature needed (imprint mode)" in outputs[0]

    outputs.append(succeeded(run("cryptounit-thrhld-set", "--signature", "2", "--revocation", "2")))
    assert f"signed by: {alice}, {bob}" in outputs[-1]
    units = admins_json(run)
    assert len(units) == 3
    for unit in units:
        assert (unit["signature_threshold"], unit["revocation_threshold"]) == (2, 2)
        assert [admin["name"] for admin in unit["administrators"]] == ["Alice", "Bob", "Carol"]

    carol_ski = units[0]["administrators"][2]["ski"]
    outputs.append(succeeded(run("cryptounit-admin-rm", "--ski", carol_ski, "--yes")))
    assert all(len(unit["administrators"]) == 2 for unit in admins_json(run))

    compared = json.loads(succeeded(run("cryptounit-compare", "--json")))
    assert compared["differences"] == []

    outputs.append(succeeded(run("cryptounit-zeroize", "--yes")))
    assert all(unit["signature_threshold"] == 0 for unit in admins_json(run))
    assert (workstation / DEFAULT_STATE_FILENAME).exists()
    for output in outputs:
        for token in service_keys.values():
            assert token not in output


def test_sigkeys_lists_the_service_skis(
    run: Any, signserv_server: Any, service_keys: dict[str, str]
) -> None:
    """``sigkeys --json`` shows each key's SKI as the signing service's public key gives it."""
    alice, bob, carol = service_keys
    rows = json.loads(
        succeeded(run("sigkeys", "--json", terminal=True, typed=service_keys[carol] + "\n"))
    )
    with SigningServiceClient(signserv_server.url) as client:
        expected = [
            client.public_key(name, Secret(token)).ski_hex() for name, token in service_keys.items()
        ]
    assert [row["key"] for row in rows] == [alice, bob, carol]
    assert [row["ski"] for row in rows] == expected


def test_selection_limits_which_units_change(run: Any, service_keys: dict[str, str]) -> None:
    """After cryptounit-rm, the removed unit is left alone; cryptounit-add brings it back."""
    alice = next(iter(service_keys))
    succeeded(run("cryptounit-rm", "--units", "3"))
    rows = json.loads(succeeded(run("cryptounits", "--json")))["crypto_units"]
    assert [row["selected"] for row in rows] == [True, True, False]
    succeeded(run("cryptounit-admin-add", "--key", alice, "--name", "Alice"))
    succeeded(run("cryptounit-add", "--units", "3"))
    assert [len(unit["administrators"]) for unit in admins_json(run)] == [1, 1, 0]
    assert "The installed administrators differ." in succeeded(run("cryptounit-compare"))


def test_interactive_prompts_choose_key_name_and_units(
    run: Any, service_keys: dict[str, str]
) -> None:
    """On a terminal the plug-in's questions are asked: units, key number, admin name."""
    succeeded(run("cryptounit-rm", terminal=True, typed="2 3\n"))
    succeeded(run("cryptounit-admin-add", terminal=True, typed="2\nBob\n"))
    units = admins_json(run)
    assert [admin["name"] for admin in units[0]["administrators"]] == ["Bob"]


def test_exit_imprint_mode_signs_with_one_admin(run: Any, service_keys: dict[str, str]) -> None:
    """cryptounit-exit-impr sets thresholds 1/1, signed by the first installed key."""
    _, bob, _ = service_keys
    succeeded(run("cryptounit-admin-add", "--key", bob, "--name", "Bob"))
    output = succeeded(run("cryptounit-exit-impr"))
    assert f"signed by: {bob}" in output
    assert {
        (unit["signature_threshold"], unit["revocation_threshold"]) for unit in admins_json(run)
    } == {(1, 1)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cryptounit-admin-add", "--name", "x"), "stdin is not a terminal: pass --key"),
        (("cryptounit-rm",), "stdin is not a terminal: pass --units"),
        (("cryptounit-zeroize",), "pass --yes"),
        (("cryptounit-thrhld-set", "--signature", "2"), "pass --revocation"),
        (("sigkeys",), "stdin is not a terminal to ask for it"),
    ],
)
def test_without_a_terminal_nothing_is_prompted(
    run: Any, args: tuple[str, ...], message: str
) -> None:
    """Scripts get an error naming the option to pass instead of a prompt."""
    result = run(*args)
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_top_level_handler_prints_error_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], workstation: Path
) -> None:
    """`error: message` on stderr, exit 1, no traceback unless --verbose."""
    monkeypatch.setenv("CLOUDTKEFILES", str(workstation))
    monkeypatch.delenv("TKE_SIGNSERV_URL", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["cryptounit-exit-impr"])
    assert exited.value.code == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: TKE_SIGNSERV_URL is not set")
    assert "Traceback" not in stderr

    with pytest.raises(SystemExit):
        main(["--verbose", "cryptounit-exit-impr"])
    assert "Traceback" in capsys.readouterr().err


def test_emulator_state_can_live_elsewhere(run: Any, tmp_path: Path, workstation: Path) -> None:
    """--emulator-state overrides the default file under $CLOUDTKEFILES."""
    state = tmp_path / "elsewhere" / "units.json"
    state.parent.mkdir()
    succeeded(run("--emulator-state", str(state), "cryptounits"))
    assert state.exists()
    assert not (workstation / DEFAULT_STATE_FILENAME).exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_emulator_state_is_accepted_before_or_after_the_command_name(
    run: Any, tmp_path: Path, where: str
) -> None:
    state = tmp_path / f"{where}.json"
    option = ["--emulator-state", str(state)]
    arguments = [*option, "cryptounits"] if where == "before" else ["cryptounits", *option]
    assert f"local emulator {state}" in succeeded(run(*arguments))
    assert state.exists()


def test_a_dead_signing_service_url_says_what_to_check(
    run: Any, service_keys: dict[str, str]
) -> None:
    """No raw connection-pool text: the URL, and what to check (running? http or https?)."""
    alice = next(iter(service_keys))
    result = run(
        "--signserv-url",
        "http://127.0.0.1:9",
        "cryptounit-admin-add",
        "--key",
        alice,
        "--name",
        "A",
    )
    message = str(result.exception)
    assert "is the signing service running at http://127.0.0.1:9?" in message
    assert "http vs https" in message
    assert "HTTPConnectionPool" not in message


def test_apply_help_shows_the_yaml_format(run: Any) -> None:
    output = succeeded(run("apply", "--help"))
    assert "signature_threshold: 2" in output and "token_file" in output


def test_help_shows_no_secrets(run: Any, service_keys: dict[str, str]) -> None:
    """--help of every command is free of tokens and names its environment variables."""
    output = succeeded(run("--help"))
    assert "TKE_SIGNSERV_URL" in output and "CLOUDTKEFILES" in output
    for command in ("cryptounit-admin-add", "cryptounit-zeroize", "sigkeys"):
        output += succeeded(run(command, "--help"))
    for token in service_keys.values():
        assert token not in output
