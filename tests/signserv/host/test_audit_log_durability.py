"""The audit log's appends: group commit (every record fsync'ed before append returns) and chaining."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from keystore import file_audit_chain as audit
from signserv.host.audit_log import AuditEvent, AuditLog, AuditWriteError, verify_log

from ...conftest import (
    RunningService,
    SignservHome,
    free_port,
    make_home,
    stop_process,
    wait_until_answering,
)

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


SERVE = [sys.executable, "-m", "signserv", "serve"]


def _served_three_requests(tmp_path: Path, start_signserv: Callable[..., RunningService]) -> Path:
    """A home whose service answered three audited requests and stopped; its audit log."""
    home = make_home(tmp_path / "served")
    token = home.create_key("admin")
    service = start_signserv(home, workers=1)
    for _ in range(3):
        headers = {"Authorization": token}
        assert requests.get(f"{service.url}/keys/admin", headers=headers, timeout=30).ok
    service.stop()
    return home.home / "audit.log"


def _serve_refused(home: SignservHome) -> str:
    """`signserv serve` exits at once with an error; its message."""
    refused = home.run("serve", "--bind", f"127.0.0.1:{free_port()}", check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    return refused.stderr


def test_a_service_restarted_over_a_deleted_or_cut_log_refuses_to_start_a_new_chain(
    tmp_path: Path, start_signserv: Callable[..., RunningService]
) -> None:
    """Hostile: the log is deleted, then cut short, while the service is stopped."""
    log = _served_three_requests(tmp_path, start_signserv)
    home = SignservHome(home=log.parent, config=tmp_path / "served" / "config.yaml")
    whole = log.read_bytes()

    log.unlink()
    message = _serve_refused(home)
    assert f"the audit log {log} is missing" in message
    assert "record 3 (hash" in message and "--start-new-audit-chain" in message
    verify = home.run("audit", "verify", check=False)
    assert verify.returncode == 1 and "is missing" in verify.stderr
    assert not log.exists(), "the refusal must not create a new log"

    log.write_bytes(b"".join(whole.splitlines(keepends=True)[:2]))
    assert "holds only" in _serve_refused(home)
    verify = home.run("audit", "verify", check=False)
    assert verify.returncode == 1 and "holds 2 records" in verify.stderr

    log.write_bytes(whole)  # put back whole, the service starts and chains on
    start_signserv(home, workers=1).stop()


def test_a_new_chain_is_started_only_knowingly_and_once_the_old_log_is_aside(
    tmp_path: Path, start_signserv: Callable[..., RunningService]
) -> None:
    log = _served_three_requests(tmp_path, start_signserv)
    home = SignservHome(home=log.parent, config=tmp_path / "served" / "config.yaml")
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0])  # cut: what is left still holds a record
    refused = home.run("serve", "--start-new-audit-chain", check=False)
    assert refused.returncode == 1 and "move it aside" in refused.stderr
    log.rename(tmp_path / "audit.log.cut")
    port = free_port()
    output = tmp_path / "serve-new-chain.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*SERVE, "--start-new-audit-chain", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=home.env(),
        )
    try:
        wait_until_answering(process, output, f"http://127.0.0.1:{port}/healthz", 200, 30)
    finally:
        stop_process(process)
    assert "starting a new audit chain" in output.read_text()
    assert "record 3 (hash" in output.read_text()
    start_signserv(home, workers=1).stop()  # later starts need no flag
