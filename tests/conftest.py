"""Fixtures shared by every test package: fast settings, the CLI, and a real gunicorn service.

Servers bind 127.0.0.1 on a free port, are polled for readiness (no sleeps), and are stopped
by the fixture that started them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import settings

from .postgres_cluster import PostgresCluster, start_cluster
from .softhsm import SoftHsm, require_softhsm, start_softhsm

# Property tests are judged on their examples, not their speed: on a 2-core CI machine shared with
# gunicorn and PostgreSQL, hypothesis's default 200 ms deadline per example fails at random.
settings.register_profile("signserv", deadline=None)
settings.load_profile("signserv")

# argon2id at a test cost; the production defaults are pinned by tests/signserv/test_config.py.
FAST_CONFIG = """\
kdf:
  time_cost: 1
  memory_cost_kib: 8192
  parallelism: 1
"""


@dataclass
class SignservHome:
    """A throwaway signserv home with a fast config, driven through the real CLI."""

    home: Path
    config: Path

    def env(self) -> dict[str, str]:
        environment = dict(os.environ)
        environment.pop("SIGNSERV_MASTER_KEY_FILE", None)
        environment.update(SIGNSERV_HOME=str(self.home), SIGNSERV_CONFIG=str(self.config))
        return environment

    def run(
        self, *arguments: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `signserv ARGUMENTS...` as a subprocess; raise with its output if it fails and ``check``."""
        result = subprocess.run(
            [sys.executable, "-m", "signserv", *arguments],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"signserv {' '.join(arguments)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    def create_key(self, name: str) -> str:
        """Create key ``name`` and return its generated token."""
        created = json.loads(self.run("keys", "create", name, "--json").stdout)
        return str(created["token"])


def make_home(directory: Path, extra_config: str = "") -> SignservHome:
    """Write a fast config into ``directory`` and run `signserv init` there."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yaml"
    config.write_text(FAST_CONFIG + extra_config)
    home = SignservHome(home=directory / "home", config=config)
    home.run("init")
    return home


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a server we started and wait for it; SIGKILL if it does not stop in 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_until_answering(
    process: subprocess.Popen[bytes],
    log: Path,
    url: str,
    ready_status: int,
    timeout: float,
    **request_options: Any,
) -> None:
    """Poll ``url`` until it answers ``ready_status``; stop the server and fail if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url}: server exited {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=1, **request_options).status_code == ready_status:
                return
        except requests.ConnectionError:
            time.sleep(0.05)  # poll interval while gunicorn binds, not a wait for readiness
    stop_process(process)
    raise AssertionError(f"{url} did not answer {ready_status} in {timeout}s:\n{log.read_text()}")


@dataclass
class RunningService:
    """A `signserv serve` process under gunicorn, and the tokens of the keys it was given."""

    url: str
    home: SignservHome
    process: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def kill(self) -> None:
        """SIGKILL the whole service (master and workers), as a crash or an OOM kill would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        stop_process(self.process)


def start_service(
    home: SignservHome,
    workers: int = 2,
    timeout: float = 30.0,
    scheme: str = "http",
    **request_options: Any,
) -> RunningService:
    """Start `signserv serve` on a free loopback port and wait until /healthz answers.

    ``request_options`` (``verify``, ``cert``) are what the health poll needs for https.
    """
    port = free_port()
    log = home.home.parent / f"serve-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "signserv",
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=home.env(),
            start_new_session=True,
        )
    service = RunningService(
        url=f"{scheme}://127.0.0.1:{port}", home=home, process=process, log=log
    )
    wait_until_answering(process, log, f"{service.url}/healthz", 200, timeout, **request_options)
    return service


@pytest.fixture
def signserv_home(tmp_path: Path) -> SignservHome:
    """An initialized home with a fast argon2id config."""
    return make_home(tmp_path / "signserv")


@pytest.fixture
def start_signserv() -> Iterator[Callable[..., RunningService]]:
    """Factory: start services on given homes; every one is stopped when the test ends."""
    started: list[RunningService] = []

    def start(home: SignservHome, workers: int = 2, **options: Any) -> RunningService:
        service = start_service(home, workers, **options)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def signserv_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One real gunicorn service (2 workers) for the session, with keys ``key-a`` and ``key-b``.

    Tests must not disable, delete or rotate these two keys; create their own for that.
    """
    home = make_home(tmp_path_factory.mktemp("session-signserv"))
    tokens = {name: home.create_key(name) for name in ("key-a", "key-b")}
    service = start_service(home)
    service.tokens.update(tokens)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A real PostgreSQL server for the session, stopped at its end.

    Skipped where PostgreSQL is not installed, except under CI (``CI=true``), where that fails.
    """
    try:
        cluster = start_cluster()
    except FileNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(f"{exc}; install Debian's postgresql package to run these tests")
    yield cluster
    cluster.stop()
    cluster.remove()


@dataclass(frozen=True)
class PostgresDatabaseUrl:
    """A fresh database of the session's server, and the file holding the role's password."""

    url: str
    password_file: Path

    def config(self) -> str:
        """The YAML that points signserv at this database."""
        return f"keystore:\n  url: {self.url}\n  password_file: {self.password_file}\n"


@pytest.fixture
def postgres_database(postgres_cluster: PostgresCluster) -> PostgresDatabaseUrl:
    """A new, empty database for one test."""
    return PostgresDatabaseUrl(postgres_cluster.create_database(), postgres_cluster.password_file)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A fresh SoftHSM2 token for the whole session (skips where SoftHSM2 is missing, not in CI)."""
    require_softhsm()
    previous = os.environ.get("SOFTHSM2_CONF")
    yield start_softhsm(tmp_path_factory.mktemp("softhsm"))
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous
