"""The state file: created on first use, 0600, locked, replaced atomically, damage reported."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path

import pytest

from signserv.tke.emulator import CryptoUnitEmulator, InstanceLayout
from signserv.tke.wire import (
    Cprb,
    EmulatorStateError,
    HTPRequest,
    UnknownCryptoUnit,
    XcpInfoRequest,
)


def test_state_file_is_created_on_first_use_with_mode_0600(state_path: Path) -> None:
    """Nothing is written until the instance is used; then the file is 0600 in a 0700 directory."""
    emulator = CryptoUnitEmulator(state_path)
    assert not state_path.exists()
    emulator.list_crypto_units()
    assert stat.S_IMODE(state_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_path.parent.stat().st_mode) == 0o700


def test_instance_survives_a_new_emulator_object(state_path: Path) -> None:
    """A second emulator on the same file sees the same crypto units (the CLI runs per command)."""
    first = CryptoUnitEmulator(state_path).list_crypto_units()
    assert CryptoUnitEmulator(state_path).list_crypto_units() == first


def test_layout_sets_unit_counts(state_path: Path) -> None:
    """Counts are configurable at creation: 1 operational, 2 recovery, 1 failover."""
    layout = InstanceLayout(operational=1, recovery=2, failover=1)
    listing = CryptoUnitEmulator(state_path, layout).list_crypto_units()
    counts = [len(listing[key]) for key in ("hsms", "source_hsms", "failover_hsms")]  # type: ignore[arg-type]
    assert counts == [1, 2, 1]


@pytest.mark.parametrize("counts", [(0, 0, 0), (-1, 1, 0)])
def test_impossible_layouts_are_refused(counts: tuple[int, int, int]) -> None:
    """No units at all, or a negative count, is a ValueError."""
    with pytest.raises(ValueError):
        InstanceLayout(*counts)


@pytest.mark.parametrize(
    "damaged",
    ["not json", "[]", '{"format": 99}', '{"format": 1, "crypto_units": []}'],
    ids=["not_json", "array", "unknown_format", "missing_root_key"],
)
def test_damaged_state_file_is_reported(state_path: Path, damaged: str) -> None:
    """A damaged file names itself in the error and is never overwritten."""
    state_path.parent.mkdir(parents=True)
    state_path.write_text(damaged)
    with pytest.raises(EmulatorStateError, match=str(state_path)):
        CryptoUnitEmulator(state_path).list_crypto_units()
    assert state_path.read_text() == damaged


def test_unknown_hsm_id(emulator: CryptoUnitEmulator) -> None:
    """Sending to an hsm_id the instance does not have raises UnknownCryptoUnit."""
    emulator.list_crypto_units()
    with pytest.raises(UnknownCryptoUnit):
        emulator.send(
            "no-such-unit", HTPRequest(1, Cprb(15, XcpInfoRequest(15, 3).encode())).encode()
        )


def _list_repeatedly(path: str, rounds: int) -> None:
    emulator = CryptoUnitEmulator(path)
    for _ in range(rounds):
        emulator.list_crypto_units()


def test_concurrent_processes_create_one_instance(state_path: Path) -> None:
    """Processes racing on a new file agree on one instance: creation happens under the lock."""
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_list_repeatedly, args=(str(state_path), 5)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    document = json.loads(state_path.read_text())
    assert len(document["crypto_units"]) == 3
    assert (
        CryptoUnitEmulator(state_path).list_crypto_units()
        == CryptoUnitEmulator(state_path).list_crypto_units()
    )
