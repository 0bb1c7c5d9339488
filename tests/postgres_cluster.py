"""A real PostgreSQL server for the tests: initdb in a temporary directory, 127.0.0.1, a free port.

Debian's server binaries refuse to run as root, so under root they run as the ``postgres``
user. The tests connect over TCP as the role ``signserv`` with a password read from a file (the
path a deployment uses); administration (creating a database per test) goes over the unix socket.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROLE = "signserv"
_PASSWORD = "signserv-test-" + uuid.uuid4().hex


def server_binaries() -> Path | None:
    """The directory holding pg_ctl and initdb (the newest installed), or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda path: int(path.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresCluster:
    """One running server; :meth:`stop` ends it and removes its directory."""

    binaries: Path
    directory: Path
    port: int
    run_as: list[str]

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def password_file(self) -> Path:
        return self.directory / "password"

    def _run(self, *arguments: str) -> None:
        subprocess.run([*self.run_as, *arguments], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            str(self.binaries / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.directory / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection over the unix socket, in autocommit mode."""
        return psycopg.connect(
            host=str(self.directory), port=self.port, user="postgres", dbname="postgres",
            autocommit=True,
        )  # fmt: skip

    def create_database(self) -> str:
        """A new empty database owned by the test role; returns its URL (without password)."""
        name = "signserv_" + uuid.uuid4().hex[:12]
        with self.admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def start_cluster() -> PostgresCluster:
    """initdb and start a server; the caller stops it."""
    binaries = server_binaries()
    if binaries is None:
        raise FileNotFoundError("PostgreSQL's server binaries (pg_ctl, initdb) are not installed")
    directory = Path(tempfile.mkdtemp(prefix="signserv-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    cluster = PostgresCluster(binaries, directory, _free_port(), run_as)
    superuser_password = directory / "superuser-password"
    superuser_password.write_text(_PASSWORD)
    if run_as:
        os.chown(superuser_password, pwd.getpwnam("postgres").pw_uid, -1)
    cluster._run(
        str(binaries / "initdb"), "-D", str(cluster.data), "-U", "postgres",
        "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={superuser_password}",
    )  # fmt: skip
    superuser_password.unlink()
    cluster.start()
    with cluster.admin() as connection:
        connection.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{_PASSWORD}'")
    cluster.password_file.write_text(_PASSWORD + "\n")
    cluster.password_file.chmod(0o600)
    return cluster
