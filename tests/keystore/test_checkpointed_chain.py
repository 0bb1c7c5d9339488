"""Checkpoints catch what each chain backend's MACs cannot: a cut tail, a rollback, a re-MAC'd rewrite.

Every case runs on the file chain and on the PostgreSQL chain (the ``stored`` fixture: five
records), tampering with the stored records directly as someone with access to them would.
"""

from __future__ import annotations

import json

import pytest

from keystore.audit_checkpoint import Checkpoint, CheckpointSigner
from keystore.checkpointed_chain import match_checkpoints
from keystore.errors import (
    AuditChainBroken,
    AuditChainDiverged,
    AuditChainTruncated,
    CheckpointSignatureInvalid,
)
from keystore.file_audit_chain import GENESIS, chain_heads, chained_record, line_hash
from keystore.records import AuditChainStore

from .conftest import MAC_KEY, StoredChain

SIGNER = CheckpointSigner("signserv-audit/test", b"\x11" * 32)
THIEF = CheckpointSigner("signserv-audit/test", b"\x22" * 32)


def checkpoint_of(chain: AuditChainStore, signer: CheckpointSigner = SIGNER) -> str:
    """A signed checkpoint of ``chain`` as it ends now (what the service ships to its sinks)."""
    head = chain.head()
    return signer.sign(Checkpoint(signer.verifier.name, head.records, head.head))


def held_to(stored: StoredChain, *notes: str, mac_key: bytes | None = MAC_KEY):
    """Verify the stored chain (MACs when ``mac_key``) against ``notes``, as `audit verify` does."""
    checkpoints = [SIGNER.verifier.open(note) for note in notes]
    return match_checkpoints(chain_heads(stored.chain.records(), mac_key), checkpoints)


def test_head_reads_the_last_record_as_a_full_verification_would(stored: StoredChain) -> None:
    head = stored.chain.head()
    assert (head.records, head.head) == (5, stored.chain.verify().head)
    assert head.head == line_hash(list(stored.chain.records())[-1])


def test_head_of_an_empty_chain_is_the_genesis(stored: StoredChain) -> None:
    stored.overwrite([])
    head = stored.reopen().head()
    assert (head.records, head.head) == (0, GENESIS)


def test_head_refuses_a_last_record_with_a_forged_mac(stored: StoredChain) -> None:
    records = list(stored.chain.records())
    records[-1] = records[-1].replace(b"event 4", b"event X")
    stored.overwrite(records)
    with pytest.raises(AuditChainBroken, match="the last, was altered or forged"):
        stored.reopen().head()


def test_an_untouched_chain_matches_its_checkpoints_with_and_without_the_mac_key(
    stored: StoredChain,
) -> None:
    early = checkpoint_of(stored.chain)
    stored.chain.append({"what": "event 5"})
    late = checkpoint_of(stored.chain)
    for mac_key in (MAC_KEY, None):
        matched = held_to(stored, late, early, mac_key=mac_key)
        assert (matched.chain.records, matched.checkpoints) == (6, 2)
        assert matched.newest is not None and matched.newest.records == 6


def test_a_truncated_tail_is_named(stored: StoredChain) -> None:
    """(a) The chain alone still verifies; the checkpoint says two records are gone."""
    note = checkpoint_of(stored.chain)
    stored.overwrite(list(stored.chain.records())[:3])
    assert stored.reopen().verify().records == 3
    with pytest.raises(
        AuditChainTruncated, match=r"holds 3 records.*signed 5.*last 2 records were cut off"
    ):
        held_to(stored, note)


def test_a_rollback_to_an_older_copy_is_named(stored: StoredChain) -> None:
    """(b) An older copy put back: it matches the older checkpoint and falls short of the newer."""
    older_copy = list(stored.chain.records())
    older = checkpoint_of(stored.chain)
    stored.chain.append({"what": "event 5"})
    newer = checkpoint_of(stored.chain)
    stored.overwrite(older_copy)
    with pytest.raises(AuditChainTruncated, match="rolled back to an older copy"):
        held_to(stored, older, newer)


def test_a_rollback_written_on_afterwards_is_named(stored: StoredChain) -> None:
    """(b) An older copy put back and a restarted service writing on: same count, other head."""
    older_copy = list(stored.chain.records())
    stored.chain.append({"what": "event 5"})
    newer = checkpoint_of(stored.chain)
    stored.overwrite(older_copy)
    stored.reopen().append({"what": "written after the rollback"})
    with pytest.raises(AuditChainDiverged, match="older copy of the log was put back"):
        held_to(stored, newer)


def test_a_chain_rewritten_with_the_mac_key_verifies_but_is_named(stored: StoredChain) -> None:
    """(c) Someone holding the audit MAC key re-chains an edited record: every MAC verifies."""
    note = checkpoint_of(stored.chain)
    entries = [json.loads(record) for record in stored.chain.records()]
    rewritten: list[bytes] = []
    previous = GENESIS
    for entry in entries:
        fields = {
            key: value for key, value in entry.items() if key not in ("seq", "time", "prev", "mac")
        }
        if fields["what"] == "event 2":
            fields["what"] = "nothing happened"
        rewritten.append(chained_record(fields, len(rewritten) + 1, previous, MAC_KEY))
        previous = line_hash(rewritten[-1])
    stored.overwrite(rewritten)
    assert stored.reopen().verify().records == 5
    with pytest.raises(
        AuditChainDiverged,
        match=r"at record 5 \(it agrees with no earlier checkpoint\): .*rewritten by someone holding",
    ):
        held_to(stored, note)


def test_a_checkpoint_forged_without_the_checkpoint_key_is_named(stored: StoredChain) -> None:
    """(d) Whoever rewrote the chain cannot sign a checkpoint that the real key's verifier accepts."""
    with pytest.raises(CheckpointSignatureInvalid, match="not signed by the checkpoint key"):
        held_to(stored, checkpoint_of(stored.chain, THIEF))
    garbled = checkpoint_of(stored.chain).replace("\n5\n", "\n6\n")
    with pytest.raises(CheckpointSignatureInvalid, match="altered or forged"):
        held_to(stored, garbled)
