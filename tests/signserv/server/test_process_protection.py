"""Processes that hold keys dump no core, and the samples they write for /metrics are private."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import requests

from ...conftest import make_home

REPORT_DUMPABLE = """
import ctypes, resource
from signserv.host.core_dumps import forbid_core_dumps
forbid_core_dumps()
print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), *resource.getrlimit(resource.RLIMIT_CORE))
"""


def test_forbidding_core_dumps_zeroes_the_limit_and_clears_the_dumpable_flag() -> None:
    child = subprocess.run(
        [sys.executable, "-c", REPORT_DUMPABLE], capture_output=True, text=True, timeout=60
    )
    assert child.stdout.split() == ["0", "0", "0"], child.stderr


def core_size_limit(pid: int) -> str:
    """The ``Max core file size`` line of ``/proc/<pid>/limits``."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return " ".join(line.split()[4:6])
    raise AssertionError(f"no core limit for {pid}")


def worker_pids(master: int, expected: int) -> list[int]:
    """The master's children, once all ``expected`` workers have forked (within 30 s).

    The first answer proves only that one worker serves; its sibling may still be booting.
    """
    deadline = time.monotonic() + 30
    while True:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) >= expected or time.monotonic() > deadline:
            return [int(pid) for pid in children]
        time.sleep(0.1)


def test_a_service_started_under_umask_000_dumps_no_core_and_keeps_metrics_private(
    start_signserv, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "open-umask")
    token = home.create_key("admin")
    previous = os.umask(0)
    try:
        service = start_signserv(home)
    finally:
        os.umask(previous)
    response = requests.get(
        f"{service.url}/keys/admin", headers={"Authorization": token}, timeout=10
    )
    assert response.status_code == 200
    master = service.process.pid
    workers = worker_pids(master, expected=2)
    assert len(workers) == 2
    assert {core_size_limit(pid) for pid in [master, *workers]} == {"0 0"}
    samples = list((home.home / "metrics").glob("*.db"))
    assert samples
    assert {stat.S_IMODE(path.stat().st_mode) for path in samples} == {0o600}
