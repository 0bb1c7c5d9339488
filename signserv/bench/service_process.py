"""Running `signserv serve` on a free 127.0.0.1 port for the benchmark, and stopping it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from signserv.errors import SignservError

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
_POLL_INTERVAL_SECONDS = 0.05


class ServiceDidNotStart(SignservError):
    """`signserv serve` exited or did not answer /healthz in time."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:  # noqa: S310 - http://127.0.0.1 only
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class ServiceProcess:
    """`signserv serve` (gunicorn master and workers) for one home and config."""

    def __init__(self, home: Path, config_file: Path, workers: int, log_file: Path) -> None:
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._log_file = log_file
        command = [sys.executable, "-m", "signserv", "--home", str(home), "--config"]
        command += [str(config_file), "serve", "--bind", self.host, "--workers", str(workers)]
        with log_file.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own CLI, no shell
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid = self._process.pid

    def wait_until_healthy(self) -> None:
        """Poll /healthz until it answers 200; raise if the service exits or takes too long."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if _healthy(self.url):
                return
            time.sleep(_POLL_INTERVAL_SECONDS)  # poll interval while gunicorn binds
        tail = self._log_file.read_text(errors="replace")[-2000:]
        raise ServiceDidNotStart(f"signserv serve did not become healthy:\n{tail}")

    def stop(self) -> None:
        """SIGTERM the gunicorn master (it stops its workers); kill it if it does not exit."""
        if self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)


@contextmanager
def running_service(
    home: Path, config_file: Path, workers: int, log_file: Path
) -> Iterator[ServiceProcess]:
    """A healthy `signserv serve` for the block; stopped when the block ends, however it ends."""
    service = ServiceProcess(home, config_file, workers, log_file)
    try:
        service.wait_until_healthy()
        yield service
    finally:
        service.stop()
