"""The replicated deployment's files (deploy/replicated): structurally checked, as no image can be
pulled here. Each signserv container runs the image's ENTRYPOINT with its ``command:`` as
arguments, so a command must be what `signserv` itself accepts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from signserv.host.config import load_settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy" / "replicated"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _entrypoint() -> list[str]:
    found = re.search(r"^ENTRYPOINT (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert found, "the Dockerfile has an exec-form ENTRYPOINT"
    entrypoint: list[str] = json.loads(found.group(1))
    return entrypoint


SIGNSERV_SERVICES = sorted(
    name for name, service in _compose()["services"].items() if "build" in service
)


def test_every_signserv_service_is_built_from_this_image() -> None:
    assert SIGNSERV_SERVICES == ["init", "replica-a", "replica-b"]
    assert _entrypoint() == ["signserv"]


@pytest.mark.parametrize("name", SIGNSERV_SERVICES)
def test_a_services_command_is_a_signserv_command_line_after_the_entrypoint(name: str) -> None:
    """`signserv serve ...`, never `signserv signserv serve ...`: `--help` parses every option."""
    command = _compose()["services"][name]["command"]
    assert command[0] != "signserv", "the ENTRYPOINT already is signserv"
    parsed = subprocess.run(
        [sys.executable, "-m", "signserv", *command, "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert parsed.returncode == 0, parsed.stderr
    assert parsed.stdout.startswith(f"Usage: signserv {command[0]} ")


def test_the_replicas_config_loads_and_trusts_only_the_balancers_proxy_line(
    tmp_path: Path,
) -> None:
    settings = load_settings(tmp_path, DEPLOY / "config.yaml")
    assert settings.keystore.url is not None and settings.keystore.password_file is not None
    balancer = _compose()["services"]["loadbalancer"]["networks"]["signserv"]["ipv4_address"]
    assert settings.server.proxy_protocol_senders() == [balancer]
    environment = _compose()["services"]["init"]["environment"]
    assert environment["SIGNSERV_CONFIG"] == "/etc/signserv/config.yaml"


def test_the_balancer_passes_the_client_address_and_checks_readiness() -> None:
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    assert re.search(r"^\s*default-server .*\bsend-proxy\b(?!-v2)", haproxy, re.MULTILINE)
    assert "option httpchk GET /readyz" in haproxy
