"""Keystore fixtures: a fresh store with a test-cost argon2id and a spy on argon2id runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from keystore import Argon2Parameters, Argon2Runner, KeyStore, MasterKey
from keystore.sqlite import create_sqlite_keystore

FAST_ARGON2 = Argon2Parameters(time_cost=1, memory_cost_kib=8192, parallelism=1)
TOKEN = "token-for-tests-0123456789"
OTHER_TOKEN = "another-token-9876543210"


class CountingArgon2(Argon2Runner):
    """A real argon2id runner that also counts its runs."""

    def __init__(self) -> None:
        super().__init__(FAST_ARGON2, max_concurrent=2)
        self.runs = 0

    def derive(self, token: str, salt: bytes, parameters: Argon2Parameters) -> bytes:
        self.runs += 1
        return super().derive(token, salt, parameters)


@pytest.fixture
def argon2() -> CountingArgon2:
    return CountingArgon2()


@pytest.fixture
def master_key() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "keystore.db"


@pytest.fixture
def store(store_path: Path, master_key: MasterKey, argon2: CountingArgon2) -> KeyStore:
    return create_sqlite_keystore(store_path, master_key, argon2)
