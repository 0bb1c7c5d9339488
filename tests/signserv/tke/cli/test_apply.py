"""``signserv-tke apply FILE`` end to end: Terraform's hsm_config against the emulator.

The configuration is reached from a fresh instance and from other configurations (strategies
A, B and C of TKE-REFERENCE §7.4); a second apply changes nothing; every infeasible case of
§7.3 is reported with the SDK's text and leaves the state file byte for byte as it was.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result

from signserv.tke.client import transition
from signserv.tke.emulator import DEFAULT_STATE_FILENAME, InstanceLayout, open_emulator

from ..conftest import over_both_transports
from .test_master_key_cli import cli_runner, succeeded

ROLES = ("alice", "bob", "carol", "dave", "erin")


@pytest.fixture(scope="module")
def keys(signserv_server: Any) -> dict[str, tuple[str, str]]:
    """Five keys of the session's signing service: role -> (key name, token)."""
    prefix = f"apply-{secrets.token_hex(4)}"
    created = {}
    for role in ROLES:
        name = f"{prefix}-{role}"
        created[role] = (name, signserv_server.home.create_key(name))
    return created


@pytest.fixture
def workstation(tmp_path: Path, keys: dict[str, tuple[str, str]]) -> Path:
    """$CLOUDTKEFILES whose SIGNSERVKEYS holds every token but carol's (hers is in a file)."""
    entries = [
        {"key": name, "token": token} for role, (name, token) in keys.items() if role != "carol"
    ]
    (tmp_path / "SIGNSERVKEYS").write_text(json.dumps(entries))
    (tmp_path / "carol.token").write_text(keys["carol"][1])
    return tmp_path


@pytest.fixture
def run(signserv_server: Any, workstation: Path, tke_api: dict[str, str]) -> Callable[..., Result]:
    """The CLI against the session's signing service and this workstation."""
    return cli_runner(signserv_server.url, workstation, tke_api)


@pytest.fixture
def configure(workstation: Path, keys: dict[str, tuple[str, str]]) -> Any:
    """Write a config file: thresholds and roles (role -> name in the units, default the role)."""

    def write(
        signature: int, revocation: int, *roles: str, names: dict[str, str] | None = None
    ) -> str:
        admins: list[dict[str, str]] = []
        for role in roles:
            admin = {"name": (names or {}).get(role, role), "key": keys[role][0]}
            if role == "carol":
                admin["token_file"] = "carol.token"
            admins.append(admin)
        path = workstation / f"config-{secrets.token_hex(4)}.yaml"
        document = {
            "signature_threshold": signature,
            "revocation_threshold": revocation,
            "admins": admins,
        }
        path.write_text(yaml.safe_dump(document))
        return str(path)

    return write


def units(run: Any) -> list[dict[str, Any]]:
    """``cryptounit-admins --json`` for every unit (all are selected)."""
    document: list[dict[str, Any]] = json.loads(succeeded(run("cryptounit-admins", "--json")))
    return document


def assert_configured(run: Any, thresholds: tuple[int, int], names: set[str]) -> None:
    """Every unit: these thresholds and admins, one current master key, new registers Empty."""
    statuses = units(run)
    assert len(statuses) == 3
    for status in statuses:
        assert (status["signature_threshold"], status["revocation_threshold"]) == thresholds
        assert {admin["name"] for admin in status["administrators"]} == names
        assert (status["current_mk_status"], status["new_mk_status"]) == ("Valid", "Empty")
    assert len({status["current_mkvp"][:56] for status in statuses}) == 1


@over_both_transports
def test_apply_initializes_and_a_second_apply_changes_nothing(
    run: Any, configure: Any, keys: dict[str, tuple[str, str]]
) -> None:
    """Three admins, 2/2, a master key everywhere; then 'No changes'. Tokens never printed."""
    config = configure(2, 2, "alice", "bob", "carol")
    planned = succeeded(run("apply", "--check", config))
    assert planned.count("add administrator carol") == 3
    assert planned.count("generate a random master key") == 1
    assert planned.count("receive the master key") == 2
    output = succeeded(run("apply", config))
    assert "add administrator carol" in output and "Generating a random master key" in output
    assert_configured(run, (2, 2), {"alice", "bob", "carol"})
    assert all(token not in output for _, token in keys.values())
    assert succeeded(run("apply", config)).startswith("No changes")
    assert succeeded(run("apply", "--check", config)).endswith("Nothing would change.\n")


def test_reconfiguring_with_each_strategy(run: Any, configure: Any) -> None:
    """1/3 → strategy B (lower revocation, remove, add) → strategy C (add, then remove)."""
    succeeded(run("apply", configure(1, 3, "alice", "bob", "carol")))
    lowered = succeeded(run("apply", configure(1, 2, "alice", "bob", "dave")))
    assert lowered.index("set signature threshold 1 and revocation threshold 2") < lowered.index(
        "remove administrator"
    )
    assert_configured(run, (1, 2), {"alice", "bob", "dave"})
    extended = succeeded(run("apply", configure(1, 2, "alice", "carol", "erin")))
    assert extended.index("add administrator erin") < extended.index("remove administrator")
    assert_configured(run, (1, 2), {"alice", "carol", "erin"})


@pytest.fixture
def state_file(run: Any, workstation: Path) -> Path:
    """The emulator's state file, created by a first look at the units."""
    succeeded(run("cryptounits"))
    return workstation / DEFAULT_STATE_FILENAME


def refused(run: Any, config: str, state_file: Path) -> list[str]:
    """Apply a config that must be refused; the state must not change. Returns the problems."""
    before = state_file.read_bytes()
    result = run("apply", config)
    assert result.exit_code != 0, result.output
    assert state_file.read_bytes() == before
    problems: list[str] = result.exception.problems
    return problems


@pytest.mark.parametrize(
    ("thresholds", "roles", "expected"),
    [
        (
            (0, 9),
            ("alice",),
            [
                transition.SIGNATURE_THRESHOLD_RANGE,
                transition.REVOCATION_THRESHOLD_RANGE,
                transition.TOO_FEW_FOR_REVOCATION,
            ],
        ),
        (
            (3, 3),
            ("alice", "bob"),
            [transition.TOO_FEW_FOR_SIGNATURE, transition.TOO_FEW_FOR_REVOCATION],
        ),
        ((1, 1), ("alice", "alice"), [transition.KEYS_NOT_UNIQUE]),
    ],
    ids=["threshold_ranges", "too_few_admins", "same_key_twice"],
)
def test_input_problems(
    run: Any,
    configure: Any,
    state_file: Path,
    thresholds: tuple[int, int],
    roles: tuple[str, ...],
    expected: list[str],
) -> None:
    """§7.3 A: the SDK's texts, nothing sent to any unit."""
    assert refused(run, configure(*thresholds, *roles), state_file) == expected


def test_input_problems_and_unusable_keys_are_reported_together(
    run: Any, workstation: Path, state_file: Path
) -> None:
    """Nine admins, a 31-byte name and keys the service lacks: one list, as the SDK's
    CheckTransition gives it; nothing is sent to any unit."""
    names = ["x" * 31] + [f"admin {i}" for i in range(1, 9)]
    admins = [{"name": name, "key": f"k{i}", "token": "t"} for i, name in enumerate(names)]
    path = workstation / "nine.yaml"
    path.write_text(
        yaml.safe_dump({"signature_threshold": 1, "revocation_threshold": 1, "admins": admins})
    )
    assert refused(run, str(path), state_file) == [
        transition.TOO_MANY_ADMINS,
        transition.NAME_TOO_LONG,
        *(transition.KEY_NOT_ACCESSIBLE.format(name=name) for name in names),
    ]


def test_unknown_key_is_not_accessible(run: Any, workstation: Path, state_file: Path) -> None:
    """A key the service does not hold fails the probe signature (§7.3 A7)."""
    path = workstation / "unknown.yaml"
    admins = [{"name": "ghost", "key": "no-such-key", "token": "not-a-token"}]
    path.write_text(
        yaml.safe_dump({"signature_threshold": 1, "revocation_threshold": 1, "admins": admins})
    )
    assert refused(run, str(path), state_file) == [
        transition.KEY_NOT_ACCESSIBLE.format(name="ghost")
    ]


def test_no_recovery_unit(run: Any, configure: Any, workstation: Path) -> None:
    """An instance without a recovery unit cannot be configured (§7.3 B1)."""
    state = workstation / DEFAULT_STATE_FILENAME
    open_emulator(state, InstanceLayout(operational=2, recovery=0)).list_crypto_units()
    assert refused(run, configure(1, 1, "alice"), state) == [transition.NO_RECOVERY_UNIT]


def test_state_problems_of_configured_units(run: Any, configure: Any, state_file: Path) -> None:
    """Rule (a), the §9 item 27 case and a renamed admin: one problem per unit, no change."""
    succeeded(run("apply", configure(2, 2, "alice", "bob", "carol")))
    assert refused(run, configure(2, 2, "alice", "dave"), state_file) == 3 * [
        transition.SHORT_OF_SIGNATURE_KEYS
    ]
    renamed = configure(2, 2, "alice", "bob", "carol", names={"bob": "robert"})
    assert refused(run, renamed, state_file) == 3 * [transition.NAME_CHANGE]


def test_sdk_gap_item_27_is_a_problem(run: Any, configure: Any, state_file: Path) -> None:
    """Units at sig 1 / rev 3 with A,B,C and a block {A, D} rev 2: the SDK panics half-way;
    here it is the revocation problem, reported before anything changes."""
    succeeded(run("apply", configure(1, 3, "alice", "bob", "carol")))
    assert refused(run, configure(1, 2, "alice", "dave"), state_file) == 3 * [
        transition.SHORT_OF_REVOCATION_KEYS
    ]


def test_master_key_problems(run: Any, configure: Any, workstation: Path, state_file: Path) -> None:
    """A current key only in operational units, then different current keys (§7.3 B5)."""
    config = configure(1, 1, "alice", "bob")
    succeeded(run("apply", config))
    succeeded(run("cryptounit-rm", "--units", "1 2"))
    succeeded(run("cryptounit-mk-clrcur", "--yes"))
    assert refused(run, config, state_file) == [transition.CURRENT_KEY_ONLY_OPERATIONAL]

    for owner in ("p1", "p2"):
        (workstation / owner).write_text(f"{owner} password\n")
        succeeded(
            run(
                "mk-add",
                "--random",
                "--description",
                owner,
                "--password-file",
                str(workstation / owner),
            )
        )
    succeeded(
        run(
            "cryptounit-mk-load",
            "--parts",
            "1 2",
            "--password-file",
            str(workstation / "p1"),
            "--password-file",
            str(workstation / "p2"),
        )
    )
    succeeded(run("cryptounit-mk-commit"))
    succeeded(run("cryptounit-mk-setimm", "--yes"))
    assert refused(run, config, state_file) == [transition.CURRENT_KEYS_DIFFER]


def test_malformed_config_names_file_and_entry(run: Any, workstation: Path) -> None:
    """A wrong member is an error naming the file and the admin entry."""
    path = workstation / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "signature_threshold": 1,
                "revocation_threshold": 1,
                "admins": [{"name": "a", "key": "k", "tokn": "x"}],
            }
        )
    )
    result = run("apply", str(path))
    assert result.exit_code != 0
    assert "bad.yaml: admins entry 1: unknown member tokn" in str(result.exception)


def test_a_token_missing_everywhere_is_asked_for_on_a_terminal_only(
    run: Any, workstation: Path, keys: dict[str, tuple[str, str]]
) -> None:
    """An admin whose token is neither in the file nor in SIGNSERVKEYS: prompted, no echo."""
    (workstation / "SIGNSERVKEYS").write_text("[]")
    path = workstation / "prompted.yaml"
    admins = [{"name": "alice", "key": keys["alice"][0]}]
    path.write_text(
        yaml.safe_dump({"signature_threshold": 1, "revocation_threshold": 1, "admins": admins})
    )
    without_terminal = run("apply", "--check", str(path))
    assert "stdin is not a terminal" in str(without_terminal.exception)
    typed = run("apply", "--check", str(path), terminal=True, typed=f"{keys['alice'][1]}\n")
    assert succeeded(typed).startswith("No problems")
    assert keys["alice"][1] not in typed.output


def write_admin_line(workstation: Path, admin_line: str) -> Path:
    """A config whose only admin entry ends with ``admin_line``, as typed by hand."""
    path = workstation / "handwritten.yaml"
    path.write_text(
        "signature_threshold: 1\nrevocation_threshold: 1\n"
        f"admins:\n  - name: a\n    key: k\n    {admin_line}\n"
    )
    return path


def test_a_yaml_syntax_error_names_file_line_column_and_kind(run: Any, workstation: Path) -> None:
    """PyYAML's problem mark is reported as a place and a kind, not as the quoted line."""
    path = write_admin_line(workstation, 'token: "quoted" trailing')
    result = run("apply", str(path))
    assert result.exit_code != 0
    assert str(result.exception) == (
        f"{path} is not valid YAML (line 6, column 21): expected <block end>, but found '<scalar>'"
    )


@pytest.mark.parametrize(
    "hostile_admin_line",
    [
        pytest.param('token: "{token}" x', id="text-after-a-quoted-token"),
        pytest.param('token: "{token}', id="unclosed-quote"),
        pytest.param("token:{token}", id="no-space-after-the-colon"),
        pytest.param("token: *{token}", id="token-read-as-an-alias"),
        pytest.param("token: !{token} x", id="token-read-as-a-tag"),
        pytest.param("token: !{token}!x y", id="token-read-as-a-tag-handle"),
        pytest.param("token:{token}: x", id="token-inside-a-member-name"),
    ],
)
def test_a_malformed_config_never_shows_its_inline_token(
    run: Any, workstation: Path, hostile_admin_line: str
) -> None:
    """Whatever is wrong around an inline token, the error names the file and hides the token."""
    token = "SuperSecretToken123456"
    path = write_admin_line(workstation, hostile_admin_line.format(token=token))
    result = run("apply", str(path))
    assert result.exit_code != 0
    assert str(path) in str(result.exception)
    shown = f"{result.exception}\n{result.output}"
    fragments = {token[start : start + 8] for start in range(len(token) - 7)}
    assert not [fragment for fragment in fragments if fragment in shown], shown
