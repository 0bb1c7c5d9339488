"""`signserv keys policy`: set, show and clear a key's policy; bad rules refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.serialization import Encoding

from signserv.cli.keys import keys_group
from signserv.host.config import Settings
from signserv.host.home import open_keystore
from signserv.host.key_policy import KeyPolicy, PolicyInvalid, certificate_fingerprint
from signserv.tke.wire.signed_input import InputKind

from ...conftest import SignservHome, make_home
from ...tls_certificates import self_signed_certificate

TOKEN = "admin-token-0123456789abcdef"


def keys(settings: Settings, *arguments: str) -> Result:
    return CliRunner().invoke(keys_group, list(arguments), obj=settings)


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    open_keystore(settings).create_key("admin", TOKEN)
    return settings


def _shown_policy(settings: Settings) -> object:
    shown = keys(settings, "show", "admin", "--json")
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.output)["policy"]


def test_a_policy_set_on_the_command_line_is_stored_bound_and_shown(keyed: Settings) -> None:
    assert _shown_policy(keyed) is None
    result = keys(
        keyed, "policy", "admin", "--allow", "administrators", "--allow", "queries",
        "--module", "93aabc12", "--domain", "3", "--client-cert-subject", "CN=admin 1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = {
        "allow": ["administrators", "queries"],
        "modules": ["93AABC12"],
        "domains": [3],
        "client_certificate": {"subject": "CN=admin 1"},
    }
    assert _shown_policy(keyed) == expected
    listed = json.loads(keys(keyed, "list", "--json").output)
    assert listed[0]["policy"] == expected
    human = keys(keyed, "show", "admin").output
    assert "may sign: administrators, queries" in human and "domains: 3" in human
    assert "subject CN=admin 1" in keys(keyed, "policy", "admin", "--show").output
    unlocked = open_keystore(keyed).unlock("admin", TOKEN)
    assert unlocked.policy is not None
    assert KeyPolicy.from_bytes(unlocked.policy).as_record() == expected


def test_clear_removes_the_policy_with_the_master_key(keyed: Settings) -> None:
    assert keys(keyed, "policy", "admin", "--allow", "queries").exit_code == 0
    cleared = keys(keyed, "policy", "admin", "--clear")
    assert cleared.exit_code == 0 and "removed" in cleared.output
    assert _shown_policy(keyed) is None
    assert "none" in keys(keyed, "policy", "admin").output


def test_allow_any_with_a_certificate_file_binds_its_fingerprint(
    keyed: Settings, tmp_path: Path
) -> None:
    certificate = self_signed_certificate("admin 1")
    pem = tmp_path / "admin1.pem"
    pem.write_bytes(certificate.public_bytes(Encoding.PEM))
    result = keys(keyed, "policy", "admin", "--allow", "any", "--client-cert-file", str(pem))
    assert result.exit_code == 0, result.output
    shown = _shown_policy(keyed)
    assert shown == {
        "allow": sorted(kind.value for kind in InputKind),
        "client_certificate": {
            "sha256": certificate_fingerprint(certificate.public_bytes(Encoding.DER))
        },
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--allow", "everything"), "'everything' is not one of"),
        (("--allow", "queries", "--domain", "256"), "256 is not in the range 0<=x<=255"),
        (("--allow", "queries", "--domain", "three"), "'three' is not a valid integer"),
        (("--module", "93AABC12"), "--allow KIND"),
        (("--allow", "queries", "--clear"), "one at a time"),
        (
            (
                "--allow",
                "queries",
                "--client-cert-subject",
                "CN=a",
                "--client-cert-fingerprint",
                "00",
            ),
            "bind to one certificate",
        ),
    ],
)
def test_bad_options_are_refused_by_name_and_change_nothing(
    keyed: Settings, arguments: tuple[str, ...], message: str
) -> None:
    result = keys(keyed, "policy", "admin", *arguments)
    assert result.exit_code == 2
    assert message in result.output
    assert _shown_policy(keyed) is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--module", "93 AA"), "not a crypto-module serial"),
        (("--client-cert-fingerprint", "abc"), "64 lowercase hex digits"),
        (("--client-cert-subject", "admin"), "RFC 4514"),
    ],
)
def test_bad_rules_are_refused_by_name_and_change_nothing(
    keyed: Settings, arguments: tuple[str, ...], message: str
) -> None:
    result = keys(keyed, "policy", "admin", "--allow", "queries", *arguments)
    assert isinstance(result.exception, PolicyInvalid)
    assert message in str(result.exception)
    assert _shown_policy(keyed) is None


def test_the_installed_command_prints_an_error_line_for_an_unknown_key(tmp_path: Path) -> None:
    home: SignservHome = make_home(tmp_path / "h")
    result = home.run("keys", "policy", "absent", "--allow", "queries", check=False)
    assert result.returncode == 1
    assert "error: no key named 'absent'" in result.stderr
