"""`signserv master-key rotate`: killed at random moments, the keystore still opens and loses no key.

Each round runs a real rotation in a child process and SIGKILLs it after a random delay drawn
over the rotation's own measured duration. After every kill the keystore must open with exactly
one of the master keys involved, and ``open_keystore`` (which settles an interrupted rotation)
must unlock every key with its token. Meanwhile another process holds a connection open, as a
running service does; it is killed at the end, so the last check reads a recovered WAL.
"""

from __future__ import annotations

import dataclasses
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from keystore import (
    Argon2Runner,
    MasterKey,
    MasterKeyMismatch,
    read_master_key,
    write_master_key,
)
from keystore.rotation import RotationFiles
from keystore.sqlite import open_sqlite_keystore
from signserv import contract
from signserv.cli.maintenance import master_key_group
from signserv.host.config import Settings
from signserv.host.home import open_keystore
from signserv.server.app import create_app

from ...conftest import make_home

KILL_ROUNDS = 20
KEY_COUNT = 12
ROTATE_IN_CHILD = """
import sys
from pathlib import Path
from signserv.host.config import load_settings
from signserv.host.home import rotate_home_master_key
settings = load_settings(Path(sys.argv[1]), Path(sys.argv[2]))
print("ready", flush=True)
rotate_home_master_key(settings)
print("done", flush=True)
"""
# A reader that keeps a connection open throughout, as a running service's workers do.
HOLD_A_CONNECTION = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
connection.execute("SELECT count(*) FROM keys").fetchall()
print("open", flush=True)
sys.stdin.read()
"""


def token_of(index: int) -> str:
    return f"token-of-key-{index:02d}-0123456789"


@pytest.fixture
def keyed_settings(settings: Settings) -> Settings:
    """An initialized home holding KEY_COUNT keys."""
    store = open_keystore(settings)
    for index in range(KEY_COUNT):
        store.create_key(f"key-{index:02d}", token_of(index))
    store.close()
    return settings


def unlock_all(settings: Settings) -> dict[str, int]:
    """Open the keystore as every command does and unlock each key; its scalar by name."""
    store = open_keystore(settings)
    try:
        return {
            f"key-{index:02d}": store.unlock(f"key-{index:02d}", token_of(index))
            .signing_key.private_key.private_numbers()
            .private_value
            for index in range(KEY_COUNT)
        }
    finally:
        store.close()


def master_keys_that_open(settings: Settings, candidates: set[str]) -> list[str]:
    argon2 = Argon2Runner(settings.kdf.parameters(), settings.kdf.max_concurrent)
    opening = []
    for text in candidates:
        try:
            open_sqlite_keystore(settings.keystore.path, MasterKey.from_text(text), argon2).close()
        except MasterKeyMismatch:
            continue
        opening.append(text)
    return opening


def start_rotation(settings: Settings, config: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", ROTATE_IN_CHILD, str(settings.home), str(config)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


def test_rotate_command_reports_without_showing_any_key(keyed_settings: Settings) -> None:
    master_key_file = keyed_settings.keystore.master_key_file
    before = master_key_file.read_text()
    result = CliRunner().invoke(master_key_group, ["rotate"], obj=keyed_settings)
    assert result.exit_code == 0, result.output
    assert f"{KEY_COUNT} keys re-sealed" in result.output
    assert "master.key.old" in result.output and "next cold unlock" in result.output
    after = master_key_file.read_text()
    assert before.strip() not in result.output and after.strip() not in result.output
    assert before != after


def test_rotation_keeps_the_audit_mac_secret(keyed_settings: Settings) -> None:
    """Server-wide secrets sealed under the master key move with it."""
    secret = open_keystore(keyed_settings).server_secret("audit-mac")
    assert CliRunner().invoke(master_key_group, ["rotate"], obj=keyed_settings).exit_code == 0
    assert open_keystore(keyed_settings).server_secret("audit-mac") == secret


def test_rotation_killed_at_random_moments_never_loses_a_key(
    keyed_settings: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"  # written by the settings fixture
    files = RotationFiles(keyed_settings.keystore.master_key_file)
    scalars = unlock_all(keyed_settings)
    calibration = start_rotation(keyed_settings, config)
    started = time.monotonic()
    assert calibration.stdout is not None and calibration.stdout.readline() == "done\n"
    rotation_seconds = time.monotonic() - started
    calibration.wait(timeout=30)
    files.previous.unlink()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_CONNECTION, str(keyed_settings.keystore.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "open\n"
    outcomes: Counter[str] = Counter()
    chance = random.Random()  # noqa: S311 - kill timing, not cryptography
    # Each round kills at a random moment within its own slice of 0..1.2x the measured rotation
    # time, so the kills are spread over the whole run, including after it completed.
    slice_seconds = rotation_seconds * 1.2 / KILL_ROUNDS
    for round_number in range(KILL_ROUNDS):
        before = files.current.read_text()
        child = start_rotation(keyed_settings, config)
        moment = slice_seconds * (round_number + chance.random())
        time.sleep(moment)  # the kill moment, not a wait
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        left = {path.name for path in (files.next, files.previous) if path.exists()}
        candidates = {before, files.current.read_text()}
        if files.next.exists():
            candidates.add(files.next.read_text())
        assert len(master_keys_that_open(keyed_settings, candidates)) == 1
        assert unlock_all(keyed_settings) == scalars
        assert not files.next.exists()
        rotated = files.current.read_text() != before
        outcomes[f"{'rotated' if rotated else 'unchanged'}, left {sorted(left)}"] += 1
        files.previous.unlink(missing_ok=True)
    holder.kill()  # no clean close: the next opener recovers the WAL from the file
    holder.wait(timeout=30)
    assert unlock_all(keyed_settings) == scalars, "still so after a WAL recovery"
    landed = {outcome.split(",")[0] for outcome in outcomes}
    assert landed == {"rotated", "unchanged"}, f"the kills must hit both sides: {dict(outcomes)}"


def test_running_service_follows_a_rotation_without_restart(start_signserv, tmp_path) -> None:
    """Workers adopt the new master key (checked against the keystore) on the next cold unlock."""
    home = make_home(tmp_path / "live")
    cached_token = home.create_key("warm")
    cold_token = home.create_key("cold")
    service = start_signserv(home)
    body = contract.build_sign_request_body(b"after rotation")

    def sign(name: str, token: str) -> int:
        return requests.post(
            f"{service.url}/sign/{name}",
            data=body,
            headers={"Authorization": token, "Content-Type": "application/json"},
            timeout=10,
        ).status_code

    assert sign("warm", cached_token) == 200
    home.run("master-key", "rotate")
    assert sign("cold", cold_token) == 200
    assert sign("warm", cached_token) == 200
    assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200
    assert "verified" in home.run("audit", "verify").stdout


def commit_a_rotation_without_promoting_it(settings: Settings) -> str:
    """Leave the files exactly as a rotation killed between its commit and its promotion does."""
    files = RotationFiles(settings.keystore.master_key_file)
    store = open_keystore(settings)
    write_master_key(files.next, MasterKey.generate())
    new_master_key = read_master_key(files.next)
    store.reseal_master_shares(new_master_key)
    store.close()
    return files.next.read_text()


def test_a_running_service_finishes_a_rotation_killed_before_its_promotion(
    keyed_settings: Settings,
) -> None:
    """Cold unlocks and /readyz are served at once, with no CLI run and no restart."""
    client = create_app(keyed_settings).test_client()
    new_master_key_text = commit_a_rotation_without_promoting_it(keyed_settings)
    assert client.get("/readyz").status_code == 200
    response = client.get("/keys/key-00", headers={"Authorization": token_of(0)})
    assert response.status_code == 200
    files = RotationFiles(keyed_settings.keystore.master_key_file)
    assert files.current.read_text() == new_master_key_text
    assert files.previous.exists() and not files.next.exists()


ROTATE_REPEATEDLY_IN_CHILD = """
import sys, time
from pathlib import Path
from keystore.rotation import RotationFiles
from signserv.host.config import load_settings
from signserv.host.home import rotate_home_master_key
settings = load_settings(Path(sys.argv[1]), Path(sys.argv[2]))
for _ in range(int(sys.argv[3])):
    rotate_home_master_key(settings)
    RotationFiles(settings.keystore.master_key_file).previous.unlink()
    time.sleep(0.1)  # one rotation at a time, as an operator runs them
"""


def test_no_request_fails_while_rotations_run_under_load(
    keyed_settings: Settings, tmp_path: Path
) -> None:
    """Readiness checks and cold unlocks from 4 threads during 10 rotations in another process."""
    without_cache = dataclasses.replace(
        keyed_settings, server=dataclasses.replace(keyed_settings.server, unlock_cache_seconds=0)
    )
    app = create_app(without_cache)
    rotations = subprocess.Popen(
        [
            sys.executable,
            "-c",
            ROTATE_REPEATEDLY_IN_CHILD,
            str(keyed_settings.home),
            str(tmp_path / "config.yaml"),
            "10",
        ]
    )
    statuses: Counter[int] = Counter()

    def load(number: int) -> None:
        client = app.test_client()
        index = number % KEY_COUNT
        while rotations.poll() is None:
            statuses[client.get("/readyz").status_code] += 1
            answer = client.get(
                f"/keys/key-{index:02d}", headers={"Authorization": token_of(index)}
            )
            statuses[answer.status_code] += 1

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(load, range(4)))
    assert rotations.wait(timeout=60) == 0
    assert set(statuses) == {200}, dict(statuses)
