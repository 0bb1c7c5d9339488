"""The file audit chain stores any entry the caller gives, and keeps its own fields its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keystore.file_audit_chain import GENESIS, FileAuditChain

MAC_KEY = b"m" * 32


def test_entries_are_chained_and_verify(tmp_path: Path) -> None:
    chain = FileAuditChain(tmp_path / "audit.log", MAC_KEY, fsync=False)
    chain.append({"what": "first"})
    chain.append({"what": "second"})
    records = [json.loads(line) for line in chain.records()]
    assert [record["what"] for record in records] == ["first", "second"]
    assert [record["seq"] for record in records] == [1, 2]
    assert records[0]["prev"] == GENESIS
    assert chain.verify().records == 2


@pytest.mark.parametrize("reserved", ["seq", "time", "prev", "mac"])
def test_an_entry_that_sets_a_chain_field_is_refused(tmp_path: Path, reserved: str) -> None:
    """A forged ``seq`` or ``prev`` in an entry would otherwise replace the chain's own."""
    chain = FileAuditChain(tmp_path / "audit.log", MAC_KEY, fsync=False)
    with pytest.raises(ValueError, match=reserved):
        chain.append({reserved: 1})
    assert not (tmp_path / "audit.log").exists()
