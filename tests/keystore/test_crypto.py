"""The envelope: both secrets needed, each rotatable alone, fields bound to their record."""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from keystore import (
    Argon2Parameters,
    KeystoreCorrupt,
    MasterKey,
    MasterKeyInvalid,
    TokenRejected,
    crypto,
)

from .conftest import OTHER_TOKEN, TOKEN, CountingArgon2


@pytest.fixture
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP521R1())


def scalar(key: ec.EllipticCurvePrivateKey) -> int:
    return key.private_numbers().private_value


def test_production_argon2_defaults_are_rfc_9106_second_recommendation() -> None:
    """RFC 9106 §4: argon2id, t=3, 64 MiB, p=4 (the tests lower it only through config)."""
    assert Argon2Parameters() == Argon2Parameters(time_cost=3, memory_cost_kib=65536, parallelism=4)


def test_sealed_key_opens_with_token_and_master_key(private_key, master_key, argon2) -> None:
    sealed = crypto.seal_private_key("k", private_key, TOKEN, master_key, argon2)
    opened = crypto.unseal_private_key("k", sealed, TOKEN, master_key, argon2)
    assert scalar(opened) == scalar(private_key)


def test_wrong_token_is_rejected(private_key, master_key, argon2) -> None:
    sealed = crypto.seal_private_key("k", private_key, TOKEN, master_key, argon2)
    with pytest.raises(TokenRejected):
        crypto.unseal_private_key("k", sealed, OTHER_TOKEN, master_key, argon2)


def test_database_plus_master_key_without_token_cannot_sign(
    private_key, master_key, argon2
) -> None:
    """A stolen database and master key are not enough: the token share is still sealed."""
    sealed = crypto.seal_private_key("k", private_key, TOKEN, master_key, argon2)
    with pytest.raises(TokenRejected):
        crypto.unseal_private_key("k", sealed, "guessed-token-000000000", master_key, argon2)


def test_wrong_master_key_is_refused(private_key, master_key, argon2) -> None:
    sealed = crypto.seal_private_key("k", private_key, TOKEN, master_key, argon2)
    with pytest.raises(KeystoreCorrupt):
        crypto.unseal_private_key("k", sealed, TOKEN, MasterKey.generate(), argon2)


def test_seal_is_bound_to_the_key_name(private_key, master_key, argon2) -> None:
    """A record copied under another name does not open (AAD names the key)."""
    sealed = crypto.seal_private_key("alice", private_key, TOKEN, master_key, argon2)
    with pytest.raises(TokenRejected):
        crypto.unseal_private_key("mallory", sealed, TOKEN, master_key, argon2)


def test_fields_cannot_be_swapped_between_records(private_key, master_key, argon2) -> None:
    """Grafting another record's private-key seal onto a record is detected."""
    first = crypto.seal_private_key("k", private_key, TOKEN, master_key, argon2)
    other = ec.generate_private_key(ec.SECP521R1())
    second = crypto.seal_private_key("k", other, TOKEN, master_key, argon2)
    grafted = dataclasses.replace(first, private_key=second.private_key)
    with pytest.raises(KeystoreCorrupt):
        crypto.unseal_private_key("k", grafted, TOKEN, master_key, argon2)


def test_token_rotation_needs_old_token_not_master_key(private_key, master_key, argon2) -> None:
    sealed = crypto.seal_private_key("k", private_key, TOKEN, master_key, argon2)
    with pytest.raises(TokenRejected):
        crypto.reseal_for_new_token("k", sealed, "not-the-token-000000000", OTHER_TOKEN, argon2)
    rotated = crypto.reseal_for_new_token("k", sealed, TOKEN, OTHER_TOKEN, argon2)
    assert rotated.master_share == sealed.master_share
    assert scalar(
        crypto.unseal_private_key("k", rotated, OTHER_TOKEN, master_key, argon2)
    ) == scalar(private_key)
    with pytest.raises(TokenRejected):
        crypto.unseal_private_key("k", rotated, TOKEN, master_key, argon2)


def test_master_key_rotation_needs_no_token(private_key, master_key, argon2) -> None:
    sealed = crypto.seal_private_key("k", private_key, TOKEN, master_key, argon2)
    new_master = MasterKey.generate()
    rotated = crypto.reseal_for_new_master_key("k", sealed, master_key, new_master)
    assert rotated.token_share == sealed.token_share
    opened = crypto.unseal_private_key("k", rotated, TOKEN, new_master, argon2)
    assert scalar(opened) == scalar(private_key)
    with pytest.raises(KeystoreCorrupt):
        crypto.unseal_private_key("k", rotated, TOKEN, master_key, argon2)


def test_record_keeps_the_argon2_cost_it_was_sealed_with(private_key, master_key, argon2) -> None:
    """A config change of the argon2id cost does not lock out existing records."""
    sealed = crypto.seal_private_key("k", private_key, TOKEN, master_key, argon2)
    assert crypto.parse_kdf_record(sealed.kdf.as_record()) == sealed.kdf
    cheaper = CountingArgon2()
    cheaper.parameters = Argon2Parameters(time_cost=1, memory_cost_kib=16, parallelism=1)
    assert scalar(crypto.unseal_private_key("k", sealed, TOKEN, master_key, cheaper)) == scalar(
        private_key
    )


@pytest.mark.parametrize(
    "text",
    [
        "scrypt:t=1",
        "argon2id:t=1,m=2",
        "garbage",
        "argon2id:t=0,m=8192,p=1",
        "argon2id:t=1,m=4,p=1",
        "argon2id:t=1,m=8192,p=0",
        "argon2id:t=1,m=99999999,p=1",
    ],
)
def test_unknown_kdf_record_is_corruption(text: str) -> None:
    with pytest.raises(KeystoreCorrupt):
        crypto.parse_kdf_record(text)


def test_master_key_is_masked_in_repr_and_str(master_key: MasterKey) -> None:
    text = master_key.to_text().strip()
    assert text not in repr(master_key)
    assert text not in str(master_key)
    assert text not in f"{master_key}"


@pytest.mark.parametrize("content", ["", "not base64!", "AAAA", "A" * 100])
def test_master_key_text_must_be_base64_of_32_bytes(content: str) -> None:
    with pytest.raises(MasterKeyInvalid):
        MasterKey.from_text(content)


def test_master_key_check_detects_another_master_key(master_key: MasterKey) -> None:
    check = crypto.master_key_check(master_key)
    assert crypto.matches_master_key_check(master_key, check)
    assert not crypto.matches_master_key_check(MasterKey.generate(), check)
    assert not crypto.matches_master_key_check(master_key, check[:-1])


def test_argon2_runs_are_bounded_by_max_concurrent(monkeypatch) -> None:
    """A flood of wrong tokens cannot run more argon2id at once than configured (memory bound)."""
    running = 0
    peak = 0
    guard = threading.Lock()

    def slow_hash(*_: object, **__: object) -> bytes:
        nonlocal running, peak
        with guard:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)  # hold the slot so that threads overlap
        with guard:
            running -= 1
        return bytes(32)

    monkeypatch.setattr(crypto, "derive_key", slow_hash)
    runner = crypto.Argon2Runner(Argon2Parameters(1, 8192, 1), max_concurrent=2)
    threads = [
        threading.Thread(target=runner.derive, args=("token", b"s" * 16, runner.parameters))
        for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is a Linux feature")
def test_argon2_runs_at_low_cpu_priority_so_warm_requests_keep_the_cpu(monkeypatch) -> None:
    """A cold flood's argon2id threads run at niceness 19; the caller's own priority is unchanged."""
    seen: list[int] = []

    def recording_hash(*_: object, **__: object) -> bytes:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return bytes(32)

    monkeypatch.setattr(crypto, "derive_key", recording_hash)
    caller_priority = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    runner = crypto.Argon2Runner(Argon2Parameters(1, 8192, 1), max_concurrent=2)
    runner.derive("token", b"s" * 16, runner.parameters)
    assert seen == [crypto.ARGON2_NICENESS]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller_priority
