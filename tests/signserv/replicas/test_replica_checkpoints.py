"""Two replicas over one PostgreSQL chain each write checkpoints of it, and all of them verify."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from keystore.audit_checkpoint import split_notes

from ...conftest import PostgresDatabaseUrl, RunningService, make_home
from .test_two_replicas import sign

REQUESTS_PER_REPLICA = 20


def test_each_replica_checkpoints_the_shared_chain_and_one_key_verifies_them_all(
    tmp_path: Path,
    postgres_database: PostgresDatabaseUrl,
    start_signserv: Callable[..., RunningService],
) -> None:
    shared_key = tmp_path / "shared" / "master.key"
    shared_key.parent.mkdir(mode=0o700)
    witness = tmp_path / "witness"
    witness.mkdir()
    homes = [
        make_home(
            tmp_path / host,
            postgres_database.config()
            + f"  master_key_file: {shared_key}\n"
            + f"audit_checkpoints:\n  interval_seconds: 1\n  file: {witness / host}.txt\n",
        )
        for host in ("host-a", "host-b")
    ]
    token = homes[0].create_key("shared")
    replicas = [start_signserv(home, workers=1) for home in homes]
    for _ in range(REQUESTS_PER_REPLICA):
        assert [sign(replica, "shared", token) for replica in replicas] == [200, 200]
    for replica in replicas:
        replica.stop()

    vkeys = {home.run("audit", "public-key").stdout for home in homes}
    assert len(vkeys) == 1, "replicas of one keystore share one checkpoint key"
    files = [witness / "host-a.txt", witness / "host-b.txt"]
    last_counts = [int(list(split_notes(path.read_text()))[-1].split("\n")[1]) for path in files]
    assert max(last_counts) == 2 * REQUESTS_PER_REPLICA
    shared_key.rename(tmp_path / "master.key.elsewhere")
    arguments = [argument for path in files for argument in ("--checkpoints", str(path))]
    verified = homes[1].run("audit", "verify", *arguments, "--public-key", vkeys.pop().strip())
    assert f"verified: {2 * REQUESTS_PER_REPLICA} records" in verified.stdout
