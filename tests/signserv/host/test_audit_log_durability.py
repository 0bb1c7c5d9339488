"""The audit log's appends: group commit (every record fsync'ed before append returns) and chaining."""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from keystore import file_audit_chain as audit
from signserv.host.audit_log import AuditEvent, AuditLog, AuditWriteError, verify_log

MAC_KEY = b"k" * 32
THREADS = 16


def event(number: int) -> AuditEvent:
    return AuditEvent(f"req-{number}", "127.0.0.1", "admin", "sign", 200, "ok", "ab" * 64, 5, 1.0)


class SlowRecordingFsync:
    """Stands in for os.fsync: slow, and remembers the file size each finished fsync began at."""

    def __init__(self) -> None:
        self.covered_sizes: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, descriptor: int) -> None:
        size_at_start = os.fstat(descriptor).st_size
        time.sleep(0.02)
        with self._lock:
            self.covered_sizes.append(size_at_start)


def end_of_record(path: Path, request_id: str) -> int:
    """Byte offset just past the record of ``request_id``."""
    end = 0
    for line in path.read_bytes().splitlines(keepends=True):
        end += len(line)
        if json.loads(line)["request_id"] == request_id:
            return end
    raise AssertionError(f"no record for {request_id}")


def test_each_append_returns_after_an_fsync_that_covers_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_fsync = SlowRecordingFsync()
    monkeypatch.setattr(audit.os, "fsync", fake_fsync)
    path = tmp_path / "audit.log"
    log = AuditLog.in_file(path, MAC_KEY)
    start = threading.Barrier(THREADS)

    def append_and_check(number: int) -> bool:
        start.wait()
        log.append(event(number))
        finished = list(fake_fsync.covered_sizes)
        return max(finished, default=0) >= end_of_record(path, f"req-{number}")

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        covered = list(pool.map(append_and_check, range(THREADS)))
    assert all(covered)
    assert verify_log(path, MAC_KEY).records == THREADS
    assert 1 <= len(fake_fsync.covered_sizes) < THREADS


def test_a_failing_fsync_fails_every_append_it_would_have_covered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(descriptor: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(audit.os, "fsync", failing_fsync)
    log = AuditLog.in_file(tmp_path / "audit.log", MAC_KEY)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda number: _append_outcome(log, number), range(4)))
    assert outcomes == ["refused"] * 4


def _append_outcome(log: AuditLog, number: int) -> str:
    try:
        log.append(event(number))
    except AuditWriteError:
        return "refused"
    return "written"


def test_without_fsync_configured_no_fsync_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_fsync = SlowRecordingFsync()
    monkeypatch.setattr(audit.os, "fsync", fake_fsync)
    log = AuditLog.in_file(tmp_path / "audit.log", MAC_KEY, fsync=False)
    log.append(event(1))
    assert fake_fsync.covered_sizes == []


def test_a_second_writer_chains_onto_a_last_record_longer_than_the_first_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.log"
    first, second = AuditLog.in_file(path, MAC_KEY), AuditLog.in_file(path, MAC_KEY)
    first.append(event(1))
    first.append(AuditEvent("req-long", "x" * 6000, "admin", "sign", 200, "ok", None, None, 1.0))
    second.append(event(2))
    first.append(event(3))
    assert verify_log(path, MAC_KEY).records == 4
