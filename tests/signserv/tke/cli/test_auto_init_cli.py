"""``signserv-tke auto-init`` and ``auto-mk-rotate`` from the command line."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from signserv.tke.client import transition

from ..conftest import over_both_transports
from .test_master_key_cli import cli_runner, succeeded


@pytest.fixture(scope="module")
def service_keys(signserv_server: Any) -> dict[str, str]:
    """Three keys of the session's signing service: name -> token."""
    prefix = f"aicli-{secrets.token_hex(4)}"
    return {f"{prefix}-{n}": signserv_server.home.create_key(f"{prefix}-{n}") for n in "abc"}


@pytest.fixture
def run(
    signserv_server: Any, service_keys: dict[str, str], tmp_path: Path, tke_api: dict[str, str]
) -> Callable[..., Result]:
    """The CLI without a terminal; SIGNSERVKEYS has every token."""
    entries = [{"key": name, "token": token} for name, token in service_keys.items()]
    (tmp_path / "SIGNSERVKEYS").write_text(json.dumps(entries))
    return cli_runner(signserv_server.url, tmp_path, tke_api)


def admin_options(service_keys: dict[str, str]) -> list[str]:
    """``--admin KEY=adminN`` for every key."""
    options = []
    for number, key in enumerate(service_keys, start=1):
        options += ["--admin", f"{key}=admin{number}"]
    return options


def current_vps(run: Any) -> set[str]:
    """The distinct current-register VPs (28 bytes) after checking every new register is Empty."""
    statuses = json.loads(succeeded(run("cryptounit-mk", "--json")))
    assert {status["new_status"] for status in statuses} == {"Empty"}
    return {status["current_vp"][:56] for status in statuses}


@over_both_transports
def test_auto_init_then_rotate(run: Any, service_keys: dict[str, str]) -> None:
    """Seed 004's progress lines, then a rotation to a different key, equal in every unit."""
    thresholds = ["--signature-threshold", "2", "--revocation-threshold", "2"]
    output = succeeded(run("auto-init", *thresholds, *admin_options(service_keys)))
    assert "Generating a random master key value...." in output
    assert "Transferring the master key value to 2 of 2 crypto units" in output
    assert "The service instance has been initialized." in output
    (initial,) = current_vps(run)

    output = succeeded(run("auto-mk-rotate", "--yes"))
    assert "Activating the new master key" in output
    (rotated,) = current_vps(run)
    assert rotated != initial


def test_auto_init_problems_are_listed(run: Any, service_keys: dict[str, str]) -> None:
    """Thresholds above the number of admins: the SDK's texts, nothing changed."""
    first_key = next(iter(service_keys))
    result = run(
        "auto-init",
        "--signature-threshold",
        "2",
        "--revocation-threshold",
        "1",
        "--admin",
        f"{first_key}=solo",
    )
    assert result.exit_code != 0
    assert transition.TOO_FEW_FOR_SIGNATURE in str(result.exception)


def test_auto_init_without_a_terminal_names_the_missing_options(run: Any) -> None:
    """No prompts without a terminal: the error says which option to pass."""
    result = run("auto-init")
    assert "--signature-threshold" in str(result.exception)
