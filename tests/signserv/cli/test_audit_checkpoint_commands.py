"""`signserv audit checkpoint|public-key|verify --checkpoints` and a real service writing checkpoints.

The service runs under gunicorn with a one-second interval while 200 signatures are asked
for; its checkpoints are then verified by a third party that holds only the public key (the
master key file is moved away first). Both storage backends: the file chain and PostgreSQL.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner

from keystore.audit_checkpoint import CheckpointVerifier, split_notes
from keystore.errors import VerifierKeyInvalid
from keystore.file_audit_chain import GENESIS, chained_record, line_hash
from keystore.sqlite import SqliteDatabase
from keystore.sqlite.audit_log_end import SqliteAuditLogEnd
from signserv import contract
from signserv.cli.audit import audit_group
from signserv.cli.home_state import open_home_keystore
from signserv.host.audit_log import AUDIT_MAC_PURPOSE
from signserv.host.config import Settings, load_settings

from ...conftest import RunningService, SignservHome, free_port, make_home

BODY = contract.build_sign_request_body(b"checkpointed")
SIGNATURES = 200
BATCHES = 4


def checkpoint_config(witness: Path, interval: int = 1) -> str:
    return f"audit_checkpoints:\n  interval_seconds: {interval}\n  file: {witness}\n"


def checkpoints_in(witness: Path) -> list[int]:
    """The record counts of the checkpoints in the witness file, oldest first (no signature check)."""
    if not witness.exists():
        return []
    return [int(note.split("\n")[1]) for note in split_notes(witness.read_text())]


def wait_for_checkpoint_of(witness: Path, records: int) -> None:
    """Poll the witness file until a checkpoint covers ``records`` (the interval is 1 s)."""
    deadline = time.monotonic() + 15
    while not any(count >= records for count in checkpoints_in(witness)):
        assert time.monotonic() < deadline, f"no checkpoint of {records} records in 15 s"
        time.sleep(0.1)


def test_a_service_under_load_writes_checkpoints_that_verify_without_the_master_key(
    tmp_path: Path, backend_config: str, start_signserv: Callable[..., RunningService]
) -> None:
    witness = tmp_path / "witness" / "checkpoints.txt"
    witness.parent.mkdir()
    # 8 first requests at once: as many cold slots as threads, so that none is shed.
    config = backend_config + checkpoint_config(witness) + "server:\n  cold_request_slots: 16\n"
    home = make_home(tmp_path / "signserv", config)
    token = home.create_key("admin")
    service = start_signserv(home)
    headers = {"Authorization": token, "Content-Type": "application/json"}

    def sign(_: int) -> int:
        return requests.post(
            f"{service.url}/sign/admin", data=BODY, headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        for batch in range(BATCHES):
            assert set(pool.map(sign, range(SIGNATURES // BATCHES))) == {200}
            signed = (batch + 1) * SIGNATURES // BATCHES
            wait_for_checkpoint_of(witness, signed)
    while_serving = checkpoints_in(witness)
    service.stop()
    assert service.process.returncode == 0
    after_shutdown = checkpoints_in(witness)
    assert len(after_shutdown) > len(while_serving)
    assert after_shutdown[-1] == SIGNATURES, "the shutdown checkpoint covers every record"
    assert after_shutdown == sorted(after_shutdown)

    vkey = home.run("audit", "public-key").stdout.strip()
    CheckpointVerifier.from_vkey(vkey)
    master_key = home.home / "master.key"
    master_key.rename(tmp_path / "master.key.elsewhere")
    verified = home.run("audit", "verify", "--checkpoints", str(witness), "--public-key", vkey)
    assert f"verified: {SIGNATURES} records" in verified.stdout
    assert "no master key: MACs not checked" in verified.stdout
    assert f"({SIGNATURES} records)" in verified.stdout.splitlines()[-1]
    without_key = home.run("audit", "verify", "--checkpoints", str(witness), check=False)
    assert without_key.returncode == 1 and "master" in without_key.stderr


def _served_home(
    tmp_path: Path, start_signserv: Callable[..., RunningService], requests_made: int
) -> tuple[SignservHome, Path]:
    """A file-chain home that answered ``requests_made`` requests and checkpointed on shutdown."""
    witness = tmp_path / "witness" / "checkpoints.txt"
    witness.parent.mkdir(exist_ok=True)
    home = make_home(tmp_path / "signserv", checkpoint_config(witness, interval=3600))
    token = home.create_key("admin")
    service = start_signserv(home, workers=1)
    for _ in range(requests_made):
        requests.get(f"{service.url}/keys/admin", headers={"Authorization": token}, timeout=30)
    service.stop()
    return home, witness


def test_verify_names_a_cut_off_tail_and_a_forged_checkpoint(
    tmp_path: Path, start_signserv: Callable[..., RunningService]
) -> None:
    home, witness = _served_home(tmp_path, start_signserv, requests_made=6)
    assert checkpoints_in(witness)[-1] == 6
    assert (
        "newest checkpoint matched"
        in home.run("audit", "verify", "--checkpoints", str(witness)).stdout
    )

    log = home.home / "audit.log"
    whole = log.read_text()
    log.write_text("".join(whole.splitlines(keepends=True)[:4]))
    cut = home.run("audit", "verify", "--checkpoints", str(witness), check=False)
    assert cut.returncode == 1
    assert "holds 4 records" in cut.stderr and "last 2 records were cut off" in cut.stderr

    log.write_text(whole)
    forged = tmp_path / "forged.txt"
    forged.write_text(re.sub(r"\n6\n", "\n7\n", witness.read_text()))
    refused = home.run("audit", "verify", "--checkpoints", str(forged), check=False)
    assert refused.returncode == 1
    assert re.search(r"checkpoint \d+: .*altered or forged", refused.stderr)


def _rechained(records: list[bytes], mac_key: bytes, edit: Callable[[dict[str, Any]], None]) -> str:
    """``records`` with each entry passed through ``edit`` and chained again under ``mac_key``:
    what someone holding the audit MAC key (but not the checkpoint key) can write."""
    lines: list[bytes] = []
    previous = GENESIS
    for record in records:
        fields = {
            name: value
            for name, value in json.loads(record).items()
            if name not in ("seq", "time", "prev", "mac")
        }
        edit(fields)
        lines.append(chained_record(fields, len(lines) + 1, previous, mac_key))
        previous = line_hash(lines[-1])
    return b"".join(line + b"\n" for line in lines).decode()


def _serve_lookups(
    home: SignservHome, start_signserv: Callable[..., RunningService], token: str, count: int
) -> None:
    """Start the service, look key ``second`` up ``count`` times, stop it (a checkpoint)."""
    service = start_signserv(home, workers=1)
    for _ in range(count):
        requests.get(f"{service.url}/keys/second", headers={"Authorization": token}, timeout=30)
    service.stop()


def test_verify_names_a_rollback_and_a_chain_rewritten_with_the_mac_key(
    tmp_path: Path, start_signserv: Callable[..., RunningService]
) -> None:
    home, witness = _served_home(tmp_path, start_signserv, requests_made=3)
    log = home.home / "audit.log"
    older_copy = log.read_text()
    token = home.create_key("second")
    _serve_lookups(home, start_signserv, token, count=2)
    assert checkpoints_in(witness)[-1] == 5
    whole = log.read_text()

    log.write_text(older_copy)
    rolled_back = home.run("audit", "verify", "--checkpoints", str(witness), check=False)
    assert rolled_back.returncode == 1
    assert "holds 3 records" in rolled_back.stderr
    assert "rolled back to an older copy" in rolled_back.stderr
    assert "agrees with every checkpoint up to record 3" in rolled_back.stderr

    mac_key = open_home_keystore(load_settings(home.home, home.config)).server_secret(
        AUDIT_MAC_PURPOSE
    )

    def hide_the_first_lookup(fields: dict[str, Any]) -> None:
        if fields["key"] == "admin":
            fields["status"], fields["outcome"] = 404, "unknown_key"

    records = [line.encode() for line in whole.splitlines()]
    log.write_text(_rechained(records, mac_key, hide_the_first_lookup))
    # Every MAC holds, but record 5 is not the one the keystore recorded as the log's end.
    mac_only = home.run("audit", "verify", check=False)
    assert mac_only.returncode == 1 and "replaced or rewritten" in mac_only.stderr
    rewritten = home.run("audit", "verify", "--checkpoints", str(witness), check=False)
    assert rewritten.returncode == 1
    assert "differs from the checkpoint of" in rewritten.stderr
    assert "(3 records) at record 3 (it agrees with no earlier checkpoint)" in rewritten.stderr
    assert "rewritten by someone holding the audit MAC key" in rewritten.stderr

    log.write_text(older_copy)  # the older copy put back: a service refuses to write on it
    refused = home.run("serve", "--bind", f"127.0.0.1:{free_port()}", check=False)
    assert refused.returncode == 1 and "cut short or replaced" in refused.stderr
    # Someone who can write the keystore too makes it forget the log's end; a service writes on.
    keystore_path = load_settings(home.home, home.config).keystore.path
    SqliteAuditLogEnd(SqliteDatabase(keystore_path)).replace(None)
    _serve_lookups(home, start_signserv, token, count=2)
    written_on = home.run("audit", "verify", "--checkpoints", str(witness), check=False)
    assert written_on.returncode == 1
    assert "agrees with every checkpoint up to record 3" in written_on.stderr
    assert "older copy of the log was put back and written on" in written_on.stderr


def test_audit_checkpoint_sends_now_or_only_prints(
    tmp_path: Path, start_signserv: Callable[..., RunningService]
) -> None:
    home, witness = _served_home(tmp_path, start_signserv, requests_made=2)
    before = checkpoints_in(witness)
    printed = home.run("audit", "checkpoint", "--print-only").stdout
    assert printed.split("\n")[1] == "2" and checkpoints_in(witness) == before
    sent = home.run("audit", "checkpoint").stdout
    assert witness.read_text().endswith(sent) and checkpoints_in(witness) == [*before, 2]


def test_verify_with_a_public_key_needs_checkpoints_and_a_verifier_key(
    settings: Settings, tmp_path: Path
) -> None:
    runner = CliRunner()
    alone = runner.invoke(audit_group, ["verify", "--public-key", "x"], obj=settings)
    assert alone.exit_code == 2 and "--checkpoints" in alone.output
    empty = tmp_path / "none.txt"
    empty.write_text("")
    garbled = runner.invoke(
        audit_group,
        ["verify", "--checkpoints", str(empty), "--public-key", "nonsense"],
        obj=settings,
    )
    assert isinstance(garbled.exception, VerifierKeyInvalid)
