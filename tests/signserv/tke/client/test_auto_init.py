"""auto-init and auto-mk-rotate end to end: a real signing service, the emulator, re-runs."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from signserv.client import SigningServiceClient, load_signservkeys, resolve_token
from signserv.tke.client.auto_init import auto_init_admins, auto_initialize, auto_rotate_master_key
from signserv.tke.client.hsm_config import AdminEntry, HsmConfig
from signserv.tke.client.hsm_update import check_configuration
from signserv.tke.client.master_key_transfer import UnitStepFailed
from signserv.tke.client.session import CryptoUnitSession, parse_crypto_units
from signserv.tke.client.signers import KeyRing
from signserv.tke.client.workflows import WorkflowError, unit_status
from signserv.tke.emulator import open_emulator
from signserv.tke.emulator.service import CryptoUnitEmulator
from signserv.tke.wire.commands import CommandId

from ....conftest import make_home

NAMES = ("admin1", "admin2", "admin3")


@pytest.fixture(scope="module")
def admin_tokens(signserv_server: Any) -> dict[str, str]:
    """Three keys of the session's signing service, created for this module."""
    prefix = f"ai-{secrets.token_hex(4)}"
    return {f"{prefix}-{n}": signserv_server.home.create_key(f"{prefix}-{n}") for n in NAMES}


@pytest.fixture
def cloudtkefiles(tmp_path: Path, admin_tokens: dict[str, str]) -> Path:
    """SIGNSERVKEYS listing the three keys with their tokens."""
    entries = [{"key": name, "token": token} for name, token in admin_tokens.items()]
    (tmp_path / "SIGNSERVKEYS").write_text(json.dumps(entries))
    return tmp_path


def key_ring_at(url: str, cloudtkefiles: Path) -> KeyRing:
    """SIGNSERVKEYS keys through the service at ``url``; never prompts."""
    return KeyRing(
        SigningServiceClient(url, timeout=30),
        load_signservkeys(cloudtkefiles),
        token_for=lambda entry: resolve_token(entry, interactive=False),
    )


@dataclass
class Instance:
    """A fresh emulated instance (2 operational + 1 recovery) reached through a send hook."""

    emulator: CryptoUnitEmulator
    before_send: Callable[[str], None] = lambda _request: None
    sent: list[str] = field(default_factory=list)

    def list_crypto_units(self) -> dict[str, object]:
        """The emulator's listing."""
        return self.emulator.list_crypto_units()

    def send(self, hsm_id: str, htp_request: str) -> str:
        """Record, run the hook, deliver."""
        self.sent.append(htp_request)
        self.before_send(htp_request)
        return self.emulator.send(hsm_id, htp_request)

    def sessions(self) -> list[CryptoUnitSession]:
        """A fresh session for every unit, in listing order."""
        anchors = dict([self.emulator.oa_trust_anchor()])
        units = parse_crypto_units(self.list_crypto_units())
        return [CryptoUnitSession(self, unit, anchors) for unit in units]


@pytest.fixture
def instance(tmp_path: Path) -> Instance:
    """A fresh instance in imprint mode."""
    return Instance(open_emulator(tmp_path / "emulator.json"))


def config_for(key_ring: KeyRing, signature: int = 2, revocation: int = 2) -> HsmConfig:
    """Every SIGNSERVKEYS key as an administrator named admin1.. in file order."""
    admins = tuple(
        AdminEntry(name=name, key=key) for name, key in zip(NAMES, key_ring.key_names, strict=True)
    )
    return HsmConfig(signature, revocation, admins)


def run_auto_init(
    instance: Instance, key_ring: KeyRing, config: HsmConfig
) -> tuple[bool, list[str]]:
    """auto-init as the CLI runs it; (changed, progress lines)."""
    lines: list[str] = []
    chosen = [(admin.key, admin.name) for admin in config.admins]
    sessions = instance.sessions()
    checked = check_configuration(config, lambda: auto_init_admins(key_ring, chosen), sessions)
    assert checked.problems == []
    return auto_initialize(config, checked, sessions, lines.append), lines


def assert_initialized(instance: Instance, thresholds: tuple[int, int] = (2, 2)) -> str:
    """Same admins and thresholds everywhere, one current VP (28 bytes), pending Empty."""
    statuses = [unit_status(session) for session in instance.sessions()]
    assert {(s.signature_threshold, s.revocation_threshold) for s in statuses} == {thresholds}
    assert {tuple(a.name for a in s.administrators) for s in statuses} == {NAMES}
    assert {(s.current_mk_status, s.new_mk_status) for s in statuses} == {("Valid", "Empty")}
    vps = {s.current_mkvp[:56] for s in statuses}
    assert len(vps) == 1
    return vps.pop()


def test_auto_init_of_a_fresh_instance(
    instance: Instance, signserv_server: Any, cloudtkefiles: Path
) -> None:
    """Three admins, 2/2, a random key from the recovery unit in all three units."""
    key_ring = key_ring_at(signserv_server.url, cloudtkefiles)
    changed, lines = run_auto_init(instance, key_ring, config_for(key_ring))
    assert changed
    assert_initialized(instance)
    assert "Generating a random master key value...." in lines
    assert sum(line.startswith("Transferring the master key value to") for line in lines) == 2

    again, lines = run_auto_init(instance, key_ring, config_for(key_ring))
    assert (again, lines) == (False, [])


def test_units_configured_otherwise_are_refused(
    instance: Instance, signserv_server: Any, cloudtkefiles: Path
) -> None:
    """After an init with 2/2, an auto-init asking for 1/1 names the unit and changes nothing."""
    key_ring = key_ring_at(signserv_server.url, cloudtkefiles)
    run_auto_init(instance, key_ring, config_for(key_ring))
    state = instance.emulator.state_path.read_bytes()
    with pytest.raises(WorkflowError, match=r"crypto unit \[.*cryptounit-compare"):
        run_auto_init(instance, key_ring, config_for(key_ring, 1, 1))
    assert instance.emulator.state_path.read_bytes() == state


def carries(request: str, command: CommandId) -> bool:
    """Whether an HTPRequest holds a block for ``command`` (its cmdId OCTET STRING, §3.7)."""
    return f"0404{command:08X}" in request


def finalize_refused(request: str) -> None:
    """A hook that fails the first Finalize WK, as a unit going away would."""
    if carries(request, CommandId.FINALIZE_WK):
        raise UnitStepFailed("[somewhere]", "finalize", RuntimeError("unit went away"))


def test_rotation_retires_the_old_key_only_when_every_unit_holds_the_new_one(
    instance: Instance, signserv_server: Any, cloudtkefiles: Path
) -> None:
    """Interrupted at the first finalize, every unit holds the new key committed, the old one
    current; a re-run finishes with the new key everywhere."""
    key_ring = key_ring_at(signserv_server.url, cloudtkefiles)
    run_auto_init(instance, key_ring, config_for(key_ring))
    old_vp = assert_initialized(instance)

    instance.before_send = finalize_refused
    with pytest.raises(UnitStepFailed):
        auto_rotate_master_key(instance.sessions(), key_ring, lambda _line: None)
    statuses = [unit_status(session) for session in instance.sessions()]
    assert {(s.current_mkvp[:56], s.new_mk_status) for s in statuses} == {
        (old_vp, "Full Committed")
    }
    assert len({s.new_mkvp for s in statuses}) == 1

    instance.before_send = lambda _request: None
    auto_rotate_master_key(instance.sessions(), key_ring, lambda _line: None)
    assert assert_initialized(instance) == statuses[0].new_mkvp[:56] != old_vp


def test_rotation_needs_an_initialized_instance(
    instance: Instance, signserv_server: Any, cloudtkefiles: Path
) -> None:
    """A fresh instance is in imprint mode: nothing to rotate."""
    key_ring = key_ring_at(signserv_server.url, cloudtkefiles)
    with pytest.raises(WorkflowError, match="imprint mode"):
        auto_rotate_master_key(instance.sessions(), key_ring, lambda _line: None)


@pytest.mark.parametrize(
    ("killed_after", "occurrence"),
    [(CommandId.ADD_ADMIN, 4), (CommandId.EXPORT_WK, 1), (CommandId.COMMIT_WK, 1)],
    ids=["adding_to_the_second_unit", "exporting", "committing"],
)
def test_service_killed_mid_auto_init_and_a_rerun_finishes(
    instance: Instance,
    start_signserv: Any,
    tmp_path: Path,
    killed_after: CommandId,
    occurrence: int,
) -> None:
    """The signing service is SIGKILLed just before a command reaches its unit; the run stops
    naming a unit and a step, and a re-run against the restarted service completes the
    initialization (a unit left in imprint mode with some admins is zeroized and set up again)."""
    home = make_home(tmp_path / "own-service")
    service = start_signserv(home)
    entries = [{"key": name, "token": home.create_key(name)} for name in NAMES]
    (tmp_path / "SIGNSERVKEYS").write_text(json.dumps(entries))
    key_ring = key_ring_at(service.url, tmp_path)
    seen: list[str] = []

    def kill_after_command(request: str) -> None:
        if carries(request, killed_after):
            seen.append(request)
            if len(seen) == occurrence:
                service.kill()

    instance.before_send = kill_after_command
    with pytest.raises(UnitStepFailed, match=r"crypto unit \[.*failed: .*run the command again"):
        run_auto_init(instance, key_ring, config_for(key_ring))

    instance.before_send = lambda _request: None
    restarted = start_signserv(home)
    key_ring = key_ring_at(restarted.url, tmp_path)
    changed, lines = run_auto_init(instance, key_ring, config_for(key_ring))
    assert changed
    if occurrence > 1:
        assert any("zeroize (imprint mode)" in line for line in lines)
    assert_initialized(instance)
