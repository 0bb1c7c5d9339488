"""Manual master-key path end to end: key parts, load, commit, set immediately, clear."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

import pytest

from foundation.argon2id import Argon2Parameters
from signserv.client import SigningServiceClient, load_signservkeys, resolve_token
from signserv.secret import Secret
from signserv.tke.client.key_part_files import create_key_part_file, open_key_part_file
from signserv.tke.client.master_key_transfer import UnitStepFailed
from signserv.tke.client.master_key_workflows import (
    clear_current_master_key,
    clear_new_master_key,
    commit_master_key,
    load_master_key,
    master_key_registers,
    set_master_key_immediately,
)
from signserv.tke.client.session import CryptoUnitSession, parse_crypto_units
from signserv.tke.client.signers import KeyRing
from signserv.tke.client.workflows import WorkflowError, add_administrator, set_thresholds
from signserv.tke.emulator import open_emulator
from signserv.tke.wire.verification_pattern import calc_vp

FAST_KDF = Argon2Parameters(time_cost=1, memory_cost_kib=8192, parallelism=1)


@pytest.fixture(scope="module")
def admin_tokens(signserv_server: Any) -> dict[str, str]:
    """Two keys of the session's signing service, created for this module."""
    prefix = f"mk-{secrets.token_hex(4)}"
    return {f"{prefix}-{n}": signserv_server.home.create_key(f"{prefix}-{n}") for n in "ab"}


@pytest.fixture
def key_ring(signserv_server: Any, admin_tokens: dict[str, str], tmp_path: Path) -> KeyRing:
    """SIGNSERVKEYS with both keys and their tokens."""
    entries = [{"key": name, "token": token} for name, token in admin_tokens.items()]
    (tmp_path / "SIGNSERVKEYS").write_text(json.dumps(entries))
    return KeyRing(
        SigningServiceClient(signserv_server.url, timeout=30),
        load_signservkeys(tmp_path),
        token_for=lambda entry: resolve_token(entry, interactive=False),
    )


@pytest.fixture
def sessions(tmp_path: Path) -> list[CryptoUnitSession]:
    """Every unit of a fresh emulated instance (2 operational + 1 recovery)."""
    emulator = open_emulator(tmp_path / "emulator.json")
    anchors = dict([emulator.oa_trust_anchor()])
    units = parse_crypto_units(emulator.list_crypto_units())
    return [CryptoUnitSession(emulator, unit, anchors) for unit in units]


@pytest.fixture
def administered(sessions: list[CryptoUnitSession], key_ring: KeyRing) -> list[CryptoUnitSession]:
    """Both keys installed as administrators, thresholds 2/2."""
    for number, key in enumerate(key_ring.key_names, start=1):
        add_administrator(sessions, key_ring, key=key, name=f"admin{number}")
    set_thresholds(sessions, key_ring, signature=2, revocation=2)
    return sessions


def test_two_parts_load_commit_and_set_immediately(
    administered: list[CryptoUnitSession], key_ring: KeyRing, tmp_path: Path
) -> None:
    """The XOR of two part files reaches every current register; pending ends Empty."""
    values = [secrets.token_bytes(32), secrets.token_bytes(32)]
    password = Secret("correct horse battery")
    files = [
        create_key_part_file(
            tmp_path, Secret(value), description=f"part {i}", password=password, cost=FAST_KDF
        )
        for i, value in enumerate(values)
    ]
    parts = [open_key_part_file(part, password) for part in files]
    master_key = bytes(a ^ b for a, b in zip(*values, strict=True))

    load_master_key(administered, key_ring, parts)
    loaded = master_key_registers(administered)
    assert {(r.new_status, r.new_vp) for r in loaded} == {
        ("Full Uncommitted", calc_vp(master_key).hex())
    }
    changes = commit_master_key(administered, key_ring)
    assert all(len(change.signed_by) == 2 for change in changes)
    set_master_key_immediately(administered, key_ring)

    final = master_key_registers(administered)
    assert {(r.current_status, r.current_vp[:56], r.new_status) for r in final} == {
        ("Valid", calc_vp(master_key).hex()[:56], "Empty")
    }


def test_register_state_is_checked_on_every_unit_first(
    administered: list[CryptoUnitSession], key_ring: KeyRing
) -> None:
    """Committing an Empty register is refused before any unit is asked to change."""
    with pytest.raises(WorkflowError, match="Empty, not Full Uncommitted"):
        commit_master_key(administered, key_ring)
    with pytest.raises(WorkflowError, match="at least one"):
        load_master_key(administered, key_ring, [])


def test_clearing_registers(administered: list[CryptoUnitSession], key_ring: KeyRing) -> None:
    """clrnew empties a loaded new register; clrcur empties the current one."""
    parts = [Secret(secrets.token_bytes(32)), Secret(secrets.token_bytes(32))]
    load_master_key(administered, key_ring, parts)
    commit_master_key(administered, key_ring)
    set_master_key_immediately(administered, key_ring)
    load_master_key(administered, key_ring, parts)
    clear_new_master_key(administered, key_ring)
    clear_current_master_key(administered, key_ring)
    assert {(r.current_status, r.new_status) for r in master_key_registers(administered)} == {
        ("Empty", "Empty")
    }


def test_imprint_mode_is_refused_before_anything_changes(
    sessions: list[CryptoUnitSession], key_ring: KeyRing
) -> None:
    """A fresh instance is in imprint mode: no master-key command is sent."""
    with pytest.raises(WorkflowError, match="imprint mode"):
        load_master_key(sessions, key_ring, [Secret(bytes(32))])


def test_a_unit_refusing_names_the_unit_and_step(
    administered: list[CryptoUnitSession], key_ring: KeyRing
) -> None:
    """One part needs the one-part permission, which the plug-in's exit-impr leaves unset."""
    with pytest.raises(UnitStepFailed, match=r"crypto unit \[.*load the new master key"):
        load_master_key(administered, key_ring, [Secret(bytes(32))])


def test_master_key_values_never_reach_logs_or_errors(
    administered: list[CryptoUnitSession],
    key_ring: KeyRing,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Parts and their XOR appear in no log record, error message or repr."""
    caplog.set_level(logging.DEBUG)
    values = [secrets.token_bytes(32), secrets.token_bytes(32)]
    master_key = bytes(a ^ b for a, b in zip(*values, strict=True))
    parts = [Secret(value) for value in values]
    with pytest.raises(UnitStepFailed) as failed:
        load_master_key(administered[:1], key_ring, parts[:1])
    load_master_key(administered, key_ring, parts)
    with pytest.raises(WorkflowError) as refused:
        load_master_key(administered, key_ring, [parts[1], Secret(master_key)])
    texts = [caplog.text, str(refused.value), str(failed.value), repr(parts), f"{parts[0]}"]
    for secret in (*values, master_key):
        assert not any(secret.hex() in text or secret.hex().upper() in text for text in texts)


def test_a_rerun_goes_on_with_the_units_not_done_yet(
    administered: list[CryptoUnitSession], key_ring: KeyRing
) -> None:
    """A load or commit that reached only the first unit: running it again for every unit
    leaves that one alone and finishes the others."""
    parts = [Secret(secrets.token_bytes(32)), Secret(secrets.token_bytes(32))]
    load_master_key(administered[:1], key_ring, parts)
    first = administered[0].unit.location_text
    loaded = load_master_key(administered, key_ring, parts)
    assert [change.location for change in loaded] == [
        session.unit.location_text for session in administered[1:]
    ]
    commit_master_key(administered[:1], key_ring)
    committed = commit_master_key(administered, key_ring)
    assert first not in {change.location for change in committed} and len(committed) == 2
    assert {r.new_status for r in master_key_registers(administered)} == {"Full Committed"}
    with pytest.raises(WorkflowError, match="Full Committed, not Empty"):
        load_master_key(administered, key_ring, [parts[0], Secret(secrets.token_bytes(32))])


def test_a_setimm_rerun_skips_the_units_already_set(
    administered: list[CryptoUnitSession], key_ring: KeyRing
) -> None:
    """A set-immediately that reached only the first unit: running it again for every unit
    leaves that one alone (new Empty, current Valid) and finishes the others."""
    parts = [Secret(secrets.token_bytes(32)), Secret(secrets.token_bytes(32))]
    load_master_key(administered, key_ring, parts)
    commit_master_key(administered, key_ring)
    set_master_key_immediately(administered[:1], key_ring)
    finished = set_master_key_immediately(administered, key_ring)
    assert [change.location for change in finished] == [
        session.unit.location_text for session in administered[1:]
    ]
    assert {(r.current_status, r.new_status) for r in master_key_registers(administered)} == {
        ("Valid", "Empty")
    }
    assert set_master_key_immediately(administered, key_ring) == []
