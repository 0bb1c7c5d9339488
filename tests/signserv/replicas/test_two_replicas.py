"""Two `signserv serve` replicas over one real PostgreSQL: shared keys, lockout and audit chain.

Each replica has its own home (as two hosts would) and both name one master key file (as a
shared secret mount would). Every test is bounded: a few dozen requests, deadlines in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import requests

from signserv import contract

from ...conftest import PostgresDatabaseUrl, RunningService, SignservHome, make_home
from ...postgres_cluster import PostgresCluster
from ..server.test_lockout import http_from
from ..server.test_process_protection import worker_pids

WRONG = "wrong-token-0123456789abcdef"
BODY = contract.build_sign_request_body(b"replicated")


def sign_response(service: RunningService, name: str, token: str) -> requests.Response:
    return requests.post(
        f"{service.url}/sign/{name}",
        data=BODY,
        headers={"Authorization": token, "Content-Type": "application/json"},
        timeout=30,
    )


def sign(service: RunningService, name: str, token: str) -> int:
    return sign_response(service, name, token).status_code


def wait_until_signing(service: RunningService, name: str, token: str, seconds: float = 30) -> None:
    """Poll until ``name`` signs again; fail if it does not within ``seconds``."""
    deadline = time.monotonic() + seconds
    while sign(service, name, token) != 200:
        assert time.monotonic() < deadline, f"{name!r} did not sign again within {seconds} s"
        time.sleep(0.2)  # poll interval, not a wait for an event


def replica_home(
    directory: Path, database: PostgresDatabaseUrl, master_key_file: Path
) -> SignservHome:
    """A host's home whose keystore is the shared database and whose master key is the shared file."""
    return make_home(
        directory,
        f"keystore:\n  url: {database.url}\n  password_file: {database.password_file}\n"
        f"  master_key_file: {master_key_file}\n",
    )


@pytest.fixture
def two_hosts(
    tmp_path: Path, postgres_database: PostgresDatabaseUrl
) -> tuple[SignservHome, SignservHome]:
    """Two initialized homes over one database and one master key."""
    shared_key = tmp_path / "shared" / "master.key"
    shared_key.parent.mkdir(mode=0o700)
    first = replica_home(tmp_path / "host-a", postgres_database, shared_key)
    second = replica_home(tmp_path / "host-b", postgres_database, shared_key)
    return first, second


def test_second_init_migrates_nothing_and_checks_the_master_key(two_hosts) -> None:
    """`signserv init` on every replica is idempotent."""
    _, second = two_hosts
    again = second.run("init")
    assert "up to date" in again.stdout


def test_keys_sign_on_both_disable_is_seen_by_both_and_one_audit_chain_verifies(
    two_hosts, start_signserv
) -> None:
    first_home, second_home = two_hosts
    token = first_home.create_key("shared")
    first, second = start_signserv(first_home), start_signserv(second_home)
    assert [sign(first, "shared", token), sign(second, "shared", token)] == [200, 200]
    second_home.run("keys", "disable", "shared")
    assert [sign(first, "shared", token), sign(second, "shared", token)] == [403, 403]
    first_home.run("keys", "enable", "shared")
    assert [sign(first, "shared", token), sign(second, "shared", token)] == [200, 200]
    verified = second_home.run("audit", "verify").stdout
    assert "verified: 6 records" in verified, verified
    tail = [
        json.loads(line) for line in first_home.run("audit", "tail", "--json").stdout.splitlines()
    ]
    assert [record["status"] for record in tail] == [200, 200, 403, 403, 200, 200]


def test_fifty_wrong_tokens_over_both_replicas_lock_the_pair_as_on_one(
    two_hosts, start_signserv
) -> None:
    first_home, second_home = two_hosts
    token = first_home.create_key("admin")
    replicas = [start_signserv(first_home), start_signserv(second_home)]
    statuses = [
        http_from("127.0.0.2", replicas[n % 2].url, "POST", "/sign/admin", WRONG, BODY)[0]
        for n in range(50)
    ]
    assert statuses[:10] == [401] * 10, "the default threshold counts both replicas' failures"
    assert set(statuses[10:]) == {429}
    for replica in replicas:
        status, _, body = http_from("127.0.0.1", replica.url, "POST", "/sign/admin", token, BODY)
        assert status == 200, body


def test_a_delete_and_a_token_rotation_on_one_host_apply_on_both_replicas_at_once(
    two_hosts, start_signserv, tmp_path: Path
) -> None:
    """Both replicas hold the keys unlocked (warm): the next request must still see the change."""
    first_home, second_home = two_hosts
    old_token, doomed_token = first_home.create_key("rotated"), first_home.create_key("doomed")
    replicas = [start_signserv(first_home), start_signserv(second_home)]
    for replica in replicas:
        assert [sign(replica, "rotated", old_token), sign(replica, "doomed", doomed_token)] == [
            200,
            200,
        ]
    current, new = tmp_path / "current-token", tmp_path / "new-token"
    current.write_text(old_token)
    new_token = "rotated-token-0123456789abcdef"
    new.write_text(new_token)
    second_home.run(
        "keys",
        "rotate-token",
        "rotated",
        "--token-file",
        str(current),
        "--new-token-file",
        str(new),
    )
    second_home.run("keys", "delete", "doomed", "--yes")
    for replica in replicas:
        assert sign(replica, "rotated", old_token) == 401, "the retired token still signs"
        assert sign(replica, "doomed", doomed_token) == 401, "the deleted key still signs"
        assert sign(replica, "rotated", new_token) == 200


def test_concurrent_creates_and_deletes_from_two_hosts_keep_names_unique(two_hosts) -> None:
    """Both hosts' CLIs race to create the same names; each name lands once, deletes once."""
    results: dict[str, list[int]] = {"create": [], "delete": []}
    lock = threading.Lock()

    def race(home: SignservHome, command: str, name: str) -> None:
        extra = ["--json"] if command == "create" else ["--yes"]
        code = home.run("keys", command, name, *extra, check=False).returncode
        with lock:
            results[command].append(code)

    for command in ("create", "delete"):
        threads = [
            threading.Thread(target=race, args=(home, command, f"race-{n}"))
            for n in range(3)
            for home in two_hosts
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert Counter(results["create"]) == Counter({0: 3, 1: 3})
    assert Counter(results["delete"]) == Counter({0: 3, 1: 3})
    assert json.loads(two_hosts[0].run("keys", "list", "--json").stdout) == []


def _steady_load(
    services: list[RunningService], name: str, token: str, stop: threading.Event
) -> Callable[[], list[int]]:
    """Sign in a loop on every service until ``stop``; returns a function giving the statuses."""
    statuses: list[int] = []

    def loop(service: RunningService) -> None:
        while not stop.is_set():
            try:
                statuses.append(sign(service, name, token))
            except requests.ConnectionError:
                statuses.append(0)  # the replica is gone (killed)

    threads = [threading.Thread(target=loop, args=(service,)) for service in services]
    for thread in threads:
        thread.start()

    def finish() -> list[int]:
        stop.set()
        for thread in threads:
            thread.join()
        return statuses

    return finish


def test_master_key_rotation_under_load_on_both_replicas_loses_nothing(
    two_hosts, start_signserv, tmp_path: Path
) -> None:
    first_home, second_home = two_hosts
    token = first_home.create_key("busy")
    replicas = [start_signserv(first_home), start_signserv(second_home)]
    shared_key = tmp_path / "shared" / "master.key"
    retired_copy = shared_key.read_bytes()
    finish = _steady_load(replicas, "busy", token, threading.Event())
    time.sleep(1)  # let the load run before and after the rotation
    first_home.run("master-key", "rotate")
    time.sleep(1)
    statuses = finish()
    assert statuses and set(statuses) == {200}, Counter(statuses)
    # Both replicas' workers follow the new key without a restart: a key sealed under it unlocks.
    fresh = second_home.create_key("after-rotation")
    assert [sign(replica, "after-rotation", fresh) for replica in replicas] == [200, 200]
    assert "verified" in first_home.run("audit", "verify").stdout
    # A host that holds only the retired key refuses, and says why.
    stale = tmp_path / "stale" / "master.key"
    stale.parent.mkdir(mode=0o700)
    stale.write_bytes(retired_copy)
    stale.chmod(0o600)
    environment = first_home.env()
    environment["SIGNSERV_MASTER_KEY_FILE"] = str(stale)
    refused = subprocess.run(
        [sys.executable, "-m", "signserv", "keys", "list"],
        env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "the master key does not open the keystore postgresql://" in refused.stderr


def test_cold_unlocks_on_both_replicas_during_a_master_key_rotation_all_succeed(
    tmp_path: Path, postgres_database: PostgresDatabaseUrl, start_signserv
) -> None:
    """No unlock cache: every request runs argon2id and unseals under the master key of the
    moment, so requests straddle the re-seal's commit on both replicas."""
    shared_key = tmp_path / "shared" / "master.key"
    shared_key.parent.mkdir(mode=0o700)
    homes = [
        make_home(
            tmp_path / host,
            f"keystore:\n  url: {postgres_database.url}\n"
            f"  password_file: {postgres_database.password_file}\n"
            f"  master_key_file: {shared_key}\nserver:\n  unlock_cache_seconds: 0\n",
        )
        for host in ("host-a", "host-b")
    ]
    token = homes[0].create_key("cold")
    replicas = [start_signserv(home) for home in homes]
    finish = _steady_load(replicas, "cold", token, threading.Event())
    time.sleep(1)
    homes[1].run("master-key", "rotate")
    time.sleep(1)
    statuses = finish()
    assert statuses and set(statuses) == {200}, Counter(statuses)
    assert _audited_signatures(homes[0]) == len(statuses)


def test_a_replica_left_with_the_retired_master_key_stops_signing_warm_keys_at_once(
    two_hosts, start_signserv, tmp_path: Path, postgres_database: PostgresDatabaseUrl
) -> None:
    """Its own copy of the master key file (a read-only mount not yet updated): the cached,
    unlocked key must not sign once the rotation committed, and the log says what to do."""
    first_home, _ = two_hosts
    token = first_home.create_key("warm")
    shared_key = tmp_path / "shared" / "master.key"
    own_key = tmp_path / "own" / "master.key"
    own_key.parent.mkdir(mode=0o700)
    own_key.write_bytes(shared_key.read_bytes())
    own_key.chmod(0o600)
    stale = start_signserv(replica_home(tmp_path / "host-c", postgres_database, own_key))
    assert [sign(stale, "warm", token), sign(stale, "warm", token)] == [200, 200]
    first_home.run("master-key", "rotate")
    refused = sign_response(stale, "warm", token)
    assert refused.status_code == 503 and refused.json()["error"] == "keystore_unavailable"
    assert "install the keystore's current master key file here" in stale.log.read_text()
    # The operator installs the new key file: the replica follows without a restart.
    staged = own_key.with_name("master.key.new")
    staged.write_bytes(shared_key.read_bytes())
    staged.chmod(0o600)
    staged.replace(own_key)
    assert sign(stale, "warm", token) == 200


def _audited_signatures(home: SignservHome) -> int:
    """How many signatures the shared audit chain records (status 200)."""
    tail = home.run("audit", "tail", "-n", "100000", "--json").stdout.splitlines()
    return sum(1 for line in tail if json.loads(line)["status"] == 200)


def test_sigkill_of_one_replica_under_load_leaves_the_other_serving(
    two_hosts, start_signserv
) -> None:
    """Both replicas under load, one SIGKILLed: the other answers every request, and every
    signature either replica returned has its record in the one chain, which verifies."""
    first_home, second_home = two_hosts
    token = first_home.create_key("steady")
    doomed, survivor = start_signserv(first_home), start_signserv(second_home)
    doomed_statuses = _steady_load([doomed], "steady", token, threading.Event())
    survivor_statuses = _steady_load([survivor], "steady", token, threading.Event())
    time.sleep(0.5)
    doomed.kill()
    time.sleep(1)
    doomed_answers, survivor_answers = doomed_statuses(), survivor_statuses()
    assert survivor_answers and set(survivor_answers) == {200}, Counter(survivor_answers)
    assert set(doomed_answers) <= {200, 0} and 0 in doomed_answers, Counter(doomed_answers)
    signed = doomed_answers.count(200) + survivor_answers.count(200)
    assert "verified" in second_home.run("audit", "verify").stdout
    # A killed request may have committed its record without answering: never fewer records.
    assert _audited_signatures(second_home) >= signed


def _answer_while_loaded(request: Callable[[], requests.Response]) -> requests.Response:
    """The service's answer; a connection the busy machine reset is tried again (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return request()
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise


def test_a_postgres_restart_under_load_answers_503_then_recovers_by_itself(
    two_hosts, start_signserv, postgres_cluster: PostgresCluster
) -> None:
    home, _ = two_hosts
    token = home.create_key("resilient")
    service = start_signserv(home)
    assert sign(service, "resilient", token) == 200
    postgres_cluster.stop()
    try:
        during = _answer_while_loaded(lambda: sign_response(service, "resilient", token))
        ready = _answer_while_loaded(lambda: requests.get(f"{service.url}/readyz", timeout=30))
    finally:
        postgres_cluster.start()
    assert during.status_code == 503 and during.json()["error"] in (
        "keystore_unavailable",
        "audit_unavailable",
    ), during.text
    assert "Traceback" not in during.text and "signature" not in during.json()
    assert ready.status_code == 503 and ready.json()["error"] == "not_ready"
    wait_until_signing(service, "resilient", token)
    assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200
    assert "verified" in home.run("audit", "verify").stdout


def test_a_worker_replaced_while_postgres_is_down_waits_for_it_and_the_service_lives(
    two_hosts, start_signserv, postgres_cluster: PostgresCluster
) -> None:
    """gunicorn stops everything when a worker fails to boot; a database restart must not."""
    home, _ = two_hosts
    token = home.create_key("patient")
    service = start_signserv(home)
    postgres_cluster.stop()
    try:
        os.kill(worker_pids(service.process.pid, expected=2)[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while "waits for the keystore" not in service.log.read_text():
            assert service.process.poll() is None, service.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "no replacement worker waited for the keystore"
            time.sleep(0.2)
        assert service.process.poll() is None
    finally:
        postgres_cluster.start()
    wait_until_signing(service, "patient", token)


def _make_read_only(cluster: PostgresCluster, url: str, read_only: bool) -> None:
    """Set the database's default_transaction_read_only and end its sessions, so every pool
    reconnects under the new setting."""
    database = url.rsplit("/", 1)[1]
    with cluster.admin() as connection:
        connection.execute(
            f'ALTER DATABASE "{database}" SET default_transaction_read_only = '
            + ("on" if read_only else "off")
        )
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )


def test_a_read_only_database_refuses_clearly_writes_nothing_and_service_resumes(
    two_hosts,
    start_signserv,
    postgres_cluster: PostgresCluster,
    postgres_database: PostgresDatabaseUrl,
) -> None:
    home, _ = two_hosts
    token = home.create_key("steady")
    service = start_signserv(home)
    assert sign(service, "steady", token) == 200
    _make_read_only(postgres_cluster, postgres_database.url, True)
    try:
        during = _answer_while_loaded(lambda: sign_response(service, "steady", token))
        ready = _answer_while_loaded(lambda: requests.get(f"{service.url}/readyz", timeout=30))
        refused = home.run("keys", "create", "while-read-only", "--json", check=False)
    finally:
        _make_read_only(postgres_cluster, postgres_database.url, False)
    # A signature is never returned without its committed audit record.
    assert during.status_code == 503, during.text
    assert during.json()["error"] == "audit_unavailable" and "signature" not in during.json()
    assert ready.status_code == 503 and ready.json()["error"] == "not_ready"
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "is read-only" in refused.stderr and postgres_database.url not in refused.stderr
    wait_until_signing(service, "steady", token)
    assert [key["name"] for key in json.loads(home.run("keys", "list", "--json").stdout)] == [
        "steady"
    ]
    assert "verified: 2 records" in home.run("audit", "verify").stdout


def test_a_replica_started_before_its_database_waits_for_it_then_serves(
    two_hosts, start_signserv, postgres_cluster: PostgresCluster
) -> None:
    """Replicas and their database start together: the first one up must not exit at once."""
    home, _ = two_hosts
    token = home.create_key("early")
    postgres_cluster.stop()
    database_returns = threading.Timer(4, postgres_cluster.start)
    database_returns.start()
    try:
        service = start_signserv(home, timeout=60)
    finally:
        database_returns.join()
    log = service.log.read_text()
    assert "waiting up to" in log and "cannot be reached" in log, log[-2000:]
    assert sign(service, "early", token) == 200


def test_backup_and_restore_of_the_shared_keystore(
    two_hosts, tmp_path: Path, start_signserv
) -> None:
    home, other = two_hosts
    token = home.create_key("kept")
    backup = tmp_path / "backup.db"
    home.run("backup", str(backup))
    other.run("keys", "delete", "kept", "--yes")
    other.create_key("newer")
    refused = home.run("restore", str(backup), check=False)
    assert refused.returncode == 1 and "--force" in refused.stderr
    home.run("restore", str(backup), "--force")
    listed = json.loads(other.run("keys", "list", "--json").stdout)
    assert [key["name"] for key in listed] == ["kept"]
    assert sign(start_signserv(other), "kept", token) == 200


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _database_content(cluster: PostgresCluster, url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every signserv table, read as the superuser."""
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(
        host=str(cluster.directory), port=cluster.port, user="postgres", dbname=database
    ) as connection:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()  # noqa: S608
            for table in ("meta", "keys", "auth_failures", "audit_records")
        }


def test_migrate_from_sqlite_to_postgres_and_back_without_tokens(
    tmp_path: Path,
    postgres_database: PostgresDatabaseUrl,
    postgres_cluster: PostgresCluster,
    start_signserv,
) -> None:
    source = make_home(tmp_path / "sqlite")
    token = source.create_key("moved")
    service = start_signserv(source)
    assert sign(service, "moved", token) == 200
    service.stop()
    keystore, audit = source.home / "keystore.db", source.home / "audit.log"
    before = (_file_digest(keystore), _file_digest(audit))
    target_config = tmp_path / "postgres.yaml"
    target_config.write_text(source.config.read_text() + postgres_database.config())
    moved = source.run(
        "migrate", "--to-config", str(target_config), "--to-home", str(tmp_path / "pg")
    )
    assert "copied 1 key(s) and 1 audit record(s)" in moved.stdout
    assert (_file_digest(keystore), _file_digest(audit)) == before, "the source must stay untouched"
    replica = SignservHome(home=tmp_path / "pg", config=target_config)
    served = start_signserv(replica)
    assert sign(served, "moved", token) == 200
    served.stop()
    back_config = tmp_path / "back.yaml"
    back_config.write_text(source.config.read_text())
    postgres_before = _database_content(postgres_cluster, postgres_database.url)
    returned = replica.run(
        "migrate", "--to-config", str(back_config), "--to-home", str(tmp_path / "back")
    )
    assert "copied 1 key(s) and 2 audit record(s)" in returned.stdout
    assert _database_content(postgres_cluster, postgres_database.url) == postgres_before, (
        "the PostgreSQL source must stay untouched"
    )
    again = SignservHome(home=tmp_path / "back", config=back_config)
    assert "verified: 2 records" in again.run("audit", "verify").stdout
    assert sign(start_signserv(again), "moved", token) == 200


def test_a_replica_without_its_master_key_file_names_the_database_not_a_sqlite_file(
    tmp_path: Path, postgres_database: PostgresDatabaseUrl
) -> None:
    lost = tmp_path / "lost" / "master.key"
    lost.parent.mkdir(mode=0o700)
    home = replica_home(tmp_path / "host", postgres_database, lost)
    lost.unlink()
    refused = home.run("keys", "list", check=False)
    assert refused.returncode == 1
    assert "for the PostgreSQL keystore that keystore.url names" in refused.stderr
    assert "keystore.db" not in refused.stderr
