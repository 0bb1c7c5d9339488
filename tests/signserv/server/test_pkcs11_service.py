"""An HSM-backed key behind real gunicorn: the contract, its checker, a foreign client, failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from signserv.contract import HASH_ALGORITHM

from ...conftest import RunningService, SignservHome, make_home
from ...softhsm import SoftHsm

INDEPENDENT_CLIENT = Path(__file__).parents[1] / "independent_client" / "tke_like_client.mjs"


def create(home: SignservHome, name: str, *backend: str) -> str:
    created = json.loads(home.run("keys", "create", name, *backend, "--json").stdout)
    return str(created["token"])


def sign(service: RunningService, name: str, token: str) -> requests.Response:
    return requests.post(
        f"{service.url}/sign/{name}",
        json={"input": "aGVsbG8=", "hash_algorithm": HASH_ALGORITHM},
        headers={"Authorization": token},
        timeout=30,
    )


def require_node() -> str:
    """The ``node`` executable; skips without it, except in CI, where `.ci/run` installs it."""
    node = shutil.which("node")
    if node is not None:
        return node
    if os.environ.get("CI") == "true":
        pytest.fail("CI must run the independent JavaScript client: install nodejs")
    pytest.skip("Node.js is not installed")


@pytest.fixture
def hsm_home(softhsm: SoftHsm, tmp_path: Path) -> SignservHome:
    return make_home(tmp_path / "signserv", softhsm.config())


def test_an_hsm_key_passes_signserv_check_and_the_independent_client(
    hsm_home: SignservHome, start_signserv: Callable[..., RunningService], tmp_path: Path
) -> None:
    tokens = {
        "hsm-1": create(hsm_home, "hsm-1", "--backend", "pkcs11"),
        "hsm-2": create(hsm_home, "hsm-2", "--backend", "pkcs11"),
        "soft": create(hsm_home, "soft"),
    }
    listed = json.loads(hsm_home.run("keys", "list", "--json").stdout)
    assert {key["name"]: key["backend"] for key in listed} == {
        "hsm-1": "pkcs11",
        "hsm-2": "pkcs11",
        "soft": "software",
    }
    shown = json.loads(hsm_home.run("keys", "show", "hsm-1", "--json").stdout)
    assert "PKCS#11" in shown["location"]
    service = start_signserv(hsm_home)
    assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200
    for index, name in enumerate(("hsm-1", "hsm-2"), start=1):
        (tmp_path / f"token-{index}").write_text(tokens[name])
    checked = hsm_home.run(
        "check", service.url,
        "--key", "hsm-1", "--token-file", str(tmp_path / "token-1"),
        "--key2", "hsm-2", "--token2-file", str(tmp_path / "token-2"),
        "--json",
    )  # fmt: skip
    assert json.loads(checked.stdout)["ok"] is True
    node = require_node()
    for name in ("hsm-1", "soft"):  # both kinds side by side, 16 concurrent requests each
        result = subprocess.run(
            [
                node,
                str(INDEPENDENT_CLIENT),
                service.url,
                name,
                tokens[name],
                "16",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def test_a_wrong_pin_means_503_and_not_ready_until_it_is_fixed(
    softhsm: SoftHsm, tmp_path: Path, start_signserv: Callable[..., RunningService]
) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin_file.read_text())
    home = make_home(
        tmp_path / "signserv", softhsm.config(use_for_new_keys=True, pin_file=pin_file)
    )
    token = create(home, "hsm")
    software_token = create(home, "soft", "--backend", "software")
    pin_file.write_text("wrong-pin-000\n")
    service = start_signserv(home, workers=1)
    assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 503
    refused = sign(service, "hsm", token)
    assert refused.status_code == 503
    assert sign(service, "soft", software_token).status_code == 200  # never a fallback, no outage
    pin_file.write_text(softhsm.pin_file.read_text())
    assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200
    assert sign(service, "hsm", token).status_code == 200
    log = service.log.read_text()
    assert "wrong-pin-000" not in log and "refused the user PIN" in log


def test_delete_of_an_hsm_key_through_the_cli_and_a_missing_module(
    hsm_home: SignservHome, softhsm: SoftHsm, tmp_path: Path
) -> None:
    create(hsm_home, "gone", "--backend", "pkcs11")
    hsm_home.run("keys", "delete", "gone", "--yes")
    assert json.loads(hsm_home.run("keys", "list", "--json").stdout) == []
    broken = make_home(
        tmp_path / "broken",
        softhsm.config().replace(str(softhsm.module), "/nonexistent/libpkcs11.so"),
    )
    failed = broken.run("keys", "create", "k", "--backend", "pkcs11", check=False)
    assert failed.returncode != 0
    assert "/nonexistent/libpkcs11.so does not exist" in failed.stderr


def test_a_pin_in_the_yaml_is_refused_and_points_to_the_pin_file(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "signserv")
    home.config.write_text(
        home.config.read_text() + softhsm.config() + '  user_pin: "pin-in-yaml-0123"\n'
    )
    refused = home.run("keys", "list", check=False)
    assert refused.returncode != 0
    assert "'pkcs11.user_pin'" in refused.stderr
    assert "pkcs11.user_pin_file" in refused.stderr and "SIGNSERV_PKCS11_PIN" in refused.stderr
    assert "pin-in-yaml-0123" not in refused.stdout + refused.stderr
