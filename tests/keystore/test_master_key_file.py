"""The master key file: written once, 0600, atomically; read with clear errors."""

from __future__ import annotations

import stat

import pytest

from keystore import (
    MasterKey,
    MasterKeyExists,
    MasterKeyInvalid,
    MasterKeyMissing,
    read_master_key,
    write_master_key,
)


def test_written_master_key_reads_back_with_mode_0600(tmp_path) -> None:
    path = tmp_path / "secrets" / "master.key"
    master_key = MasterKey.generate()
    write_master_key(path, master_key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_master_key(path).to_text() == master_key.to_text()
    assert [item.name for item in path.parent.iterdir()] == ["master.key"]


def test_existing_master_key_is_never_replaced(tmp_path) -> None:
    path = tmp_path / "master.key"
    first = MasterKey.generate()
    write_master_key(path, first)
    with pytest.raises(MasterKeyExists):
        write_master_key(path, MasterKey.generate())
    assert read_master_key(path).to_text() == first.to_text()


def test_missing_master_key_names_the_file(tmp_path) -> None:
    with pytest.raises(MasterKeyMissing, match=r"absent\.key"):
        read_master_key(tmp_path / "absent.key")


def test_garbage_master_key_file_is_invalid(tmp_path) -> None:
    path = tmp_path / "master.key"
    path.write_text("this is not a key\n")
    with pytest.raises(MasterKeyInvalid):
        read_master_key(path)


def test_binary_master_key_file_is_refused_without_quoting_its_bytes(tmp_path) -> None:
    """A raw-binary secret (head -c32 /dev/urandom) must not leak a byte into the message."""
    path = tmp_path / "master.key"
    path.write_bytes(b"\xde\xad\xbe\xef" * 8)
    with pytest.raises(MasterKeyInvalid) as refused:
        read_master_key(path)
    assert "not text" in str(refused.value)
    assert "0xde" not in str(refused.value) and "\\xde" not in str(refused.value)
