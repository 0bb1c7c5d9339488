"""The audit log: one record per request naming a key, chained, MAC'd, failing closed."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from keystore.file_audit_chain import GENESIS
from signserv import contract
from signserv.host.audit_log import (
    AuditChainBroken,
    AuditEvent,
    AuditLog,
    AuditWriteError,
    verify_log,
)
from signserv.host.home import open_keystore
from signserv.server.app import create_app
from signserv.tke.wire.signed_input import InputKind

from ...conftest import make_home
from .backends import (  # the fixtures: the tests taking settings run on both backends
    SQLITE_ONLY,
    refuse_audit_writes_on_each_backend,  # noqa: F401
    settings_on_each_backend,  # noqa: F401
    stored_audit_records,
)

MAC_KEY = b"k" * 32
settings_for_hostile_inputs = hypothesis_settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
BODY = contract.build_sign_request_body(b"hello")


def event(number: int) -> AuditEvent:
    return AuditEvent(f"req-{number}", "127.0.0.1", "admin", "sign", 200, "ok", "ab" * 64, 5, 1.0)


@pytest.fixture
def log_with_five(tmp_path: Path) -> Path:
    path = tmp_path / "audit.log"
    log = AuditLog.in_file(path, MAC_KEY)
    for number in range(5):
        log.append(event(number))
    return path


def rewrite(path: Path, edit) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def test_records_chain_from_genesis_and_verify(log_with_five: Path) -> None:
    records = [json.loads(line) for line in log_with_five.read_text().splitlines()]
    assert [record["seq"] for record in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == GENESIS
    assert verify_log(log_with_five, MAC_KEY).records == 5
    assert os.stat(log_with_five).st_mode & 0o077 == 0


def test_edited_record_is_named(log_with_five: Path) -> None:
    def edit(lines):
        lines[2] = lines[2].replace('"status":200', '"status":201')
        return lines

    rewrite(log_with_five, edit)
    with pytest.raises(AuditChainBroken, match=r"line 3: record 3 was altered") as broken:
        verify_log(log_with_five, MAC_KEY)
    assert broken.value.line == 3


def test_deleted_record_is_named(log_with_five: Path) -> None:
    rewrite(log_with_five, lambda lines: lines[:1] + lines[2:])
    with pytest.raises(
        AuditChainBroken,
        match=r"line 2: holds record 3 where record 2 belongs \(a record is missing\)",
    ):
        verify_log(log_with_five, MAC_KEY)


def test_reordered_records_are_named(log_with_five: Path) -> None:
    rewrite(log_with_five, lambda lines: [lines[0], lines[2], lines[1], *lines[3:]])
    with pytest.raises(AuditChainBroken, match="line 2"):
        verify_log(log_with_five, MAC_KEY)


def test_rewritten_chain_without_the_mac_key_is_detected(log_with_five: Path) -> None:
    """Recomputing every hash after an edit does not help an attacker without the key."""
    forged_path = log_with_five.with_name("forged.log")
    forged = AuditLog.in_file(forged_path, b"attacker-key-000000000000000000!")
    for number in range(5):
        forged.append(event(number))
    with pytest.raises(AuditChainBroken, match="line 1: record 1 was altered or forged"):
        verify_log(forged_path, MAC_KEY)


def test_torn_last_line_fails_closed(log_with_five: Path) -> None:
    content = log_with_five.read_bytes()
    log_with_five.write_bytes(content[:-20])
    with pytest.raises(AuditChainBroken, match="line 5: not a complete audit record"):
        verify_log(log_with_five, MAC_KEY)
    with pytest.raises(AuditWriteError, match="move the file aside"):
        AuditLog.in_file(log_with_five, MAC_KEY).append(event(9))


def test_two_writers_keep_one_chain(tmp_path: Path) -> None:
    """Appenders with their own state (like two workers) interleave without a fork."""
    path = tmp_path / "audit.log"
    first, second = AuditLog.in_file(path, MAC_KEY), AuditLog.in_file(path, MAC_KEY)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: (first if n % 2 else second).append(event(n)), range(60)))
    assert verify_log(path, MAC_KEY).records == 60


def test_unwritable_log_fails_the_request_with_503(settings, refuse_audit_writes) -> None:
    token = "admin-token-0123456789abcdef"
    open_keystore(settings).create_key("admin", token)
    client = create_app(settings).test_client()
    refuse_audit_writes()
    response = client.post(
        "/sign/admin",
        data=BODY,
        headers={"Authorization": token, "Content-Type": "application/json"},
    )
    assert response.status_code == 503
    assert response.json["error"] == "audit_unavailable"
    assert "signature" not in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def test_the_503_of_a_failed_audit_write_has_a_request_id_and_is_counted_as_503(
    settings, refuse_audit_writes
) -> None:
    """The audit write runs before metrics and headers by construction, not by hook order."""
    token = "admin-token-0123456789abcdef"
    open_keystore(settings).create_key("admin", token)
    client = create_app(settings).test_client()
    refuse_audit_writes()
    response = client.get("/keys/admin", headers={"Authorization": token})
    assert response.status_code == 503
    assert len(response.headers["X-Request-ID"]) == 32
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'endpoint="/keys/<name>",status="503"' in metrics


def test_records_name_key_operation_outcome_and_input_digest_only(settings) -> None:
    token = "admin-token-0123456789abcdef"
    open_keystore(settings).create_key("admin", token)
    client = create_app(settings).test_client()
    headers = {"Authorization": token, "Content-Type": "application/json"}
    client.post("/sign/admin", data=BODY, headers=headers)
    client.get("/keys/admin", headers={"Authorization": "wrong-token-0123456789"})
    client.get("/healthz")
    records = stored_audit_records(settings)
    assert [(r["key"], r["operation"], r["status"], r["outcome"]) for r in records] == [
        ("admin", "sign", 200, "ok"),
        ("admin", "public_key", 401, "unauthorized"),
    ]
    assert records[0]["input_sha512"] == hashlib.sha512(b"hello").hexdigest()
    assert records[0]["input_length"] == 5
    text = json.dumps(records)
    assert token not in text and "aGVsbG8=" not in text and "hello" not in text


def test_busy_multi_worker_run_verifies_and_cli_names_a_deleted_record(start_signserv, tmp_path):
    """The issue's scenario: 4 gunicorn workers, concurrent clients, then `signserv audit verify`."""
    # 12 first requests at once may land in one worker: as many cold slots as threads, so that
    # none is shed (shedding is test_slow_clients.py's business).
    home = make_home(tmp_path / "busy", "server:\n  cold_request_slots: 16\n")
    token = home.create_key("admin")
    service = start_signserv(home, workers=4)
    headers = {"Authorization": token, "Content-Type": "application/json"}

    def call(number: int) -> int:
        if number % 3 == 0:
            return requests.get(
                f"{service.url}/keys/admin", headers=headers, timeout=10
            ).status_code
        return requests.post(
            f"{service.url}/sign/admin", data=BODY, headers=headers, timeout=10
        ).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert set(pool.map(call, range(240))) == {200}
    verified = home.run("audit", "verify")
    assert "verified: 240 records" in verified.stdout

    log = home.home / "audit.log"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:100] + lines[101:]) + "\n")
    broken = home.run("audit", "verify", check=False)
    assert broken.returncode == 1
    assert (
        "line 101: holds record 102 where record 101 belongs (a record is missing)" in broken.stderr
    )
    tail = home.run("audit", "tail", "-n", "3", "--json").stdout.splitlines()
    assert len(tail) == 3 and json.loads(tail[-1])["seq"] == 240


def test_short_write_fails_the_append_and_is_cut_back_so_the_next_one_lands(
    tmp_path, monkeypatch
) -> None:
    """Disk full mid-record: this request fails, the torn part is removed, the next one works."""
    path = tmp_path / "audit.log"
    log = AuditLog.in_file(path, MAC_KEY)
    log.append(event(1))
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[: len(data) // 2]))
    with pytest.raises(AuditWriteError, match="only part of a record"):
        log.append(event(2))
    monkeypatch.setattr(os, "write", real_write)
    log.append(event(3))
    assert verify_log(path, MAC_KEY).records == 2


def test_readyz_is_not_ready_while_the_audit_log_cannot_be_written(
    settings, refuse_audit_writes
) -> None:
    """Every request naming a key would be a 503, so the service must not report ready."""
    client = create_app(settings).test_client()
    assert client.get("/readyz").status_code == 200
    refuse_audit_writes()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "audit log" in response.json["message"]


@SQLITE_ONLY
def test_readyz_is_not_ready_when_the_audit_file_system_is_nearly_full(
    settings, monkeypatch
) -> None:
    client = create_app(settings).test_client()
    real_fstatvfs = os.fstatvfs

    def nearly_full(descriptor: int) -> os.statvfs_result:
        real = real_fstatvfs(descriptor)
        return os.statvfs_result((*real[:4], 1, *real[5:]))  # one free block left

    monkeypatch.setattr(os, "fstatvfs", nearly_full)
    response = client.get("/readyz")
    assert response.status_code == 503


@settings_for_hostile_inputs
@given(st.binary(max_size=1500) | st.sampled_from([bytes(100), bytes(64), b"\x30\x00"]))
def test_any_signed_input_is_signed_and_described_never_a_500(
    client, admin_token: str, settings, data: bytes
) -> None:
    """The decoder never fails a request: whatever the input, a signature and a description."""
    response = client.post(
        "/sign/admin",
        data=contract.build_sign_request_body(data),
        headers={"Authorization": admin_token, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    last = stored_audit_records(settings)[-1]
    assert last["input_length"] == len(data)
    assert last["signed"]["kind"] in {kind.value for kind in InputKind}
