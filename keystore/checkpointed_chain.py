"""An audit chain held against its signed checkpoints: what the chain alone cannot prove.

A chain's MACs and links show that no record inside it changed, but not that it is whole: a
cut-off tail, an older copy put back, or a chain rewritten by someone holding the audit MAC
key all verify. Each checkpoint (:mod:`keystore.audit_checkpoint`) fixes the hash after its
record N outside the service; the chain must reach N and hash to that head there.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from keystore.audit_checkpoint import Checkpoint
from keystore.errors import AuditChainDiverged, AuditChainTruncated
from keystore.file_audit_chain import GENESIS
from keystore.records import ChainHead


@dataclass(frozen=True)
class CheckpointsMatched:
    """A chain that agrees with every checkpoint given: where it ends, and the newest one."""

    chain: ChainHead
    newest: Checkpoint | None
    checkpoints: int


def _agreed(matched: Checkpoint | None) -> str:
    """What the chain still agrees with, so that the operator knows from where to look."""
    if matched is None:
        return "it agrees with no earlier checkpoint"
    return f"it agrees with every checkpoint up to record {matched.records}"


def _diverged(checkpoint: Checkpoint, matched: Checkpoint | None) -> AuditChainDiverged:
    return AuditChainDiverged(
        f"the audit chain differs from {checkpoint.describe()} at record {checkpoint.records} "
        f"({_agreed(matched)}): the records up to it were rewritten by someone holding the "
        "audit MAC key, or an older copy of the log was put back and written on"
    )


def match_checkpoints(
    heads: Iterable[ChainHead], checkpoints: Sequence[Checkpoint]
) -> CheckpointsMatched:
    """Walk ``heads`` (the chain after each record, oldest first) and hold each checkpoint to it.

    Raises :class:`AuditChainDiverged` at the first checkpoint whose head the chain does not
    reach at its record count, and :class:`AuditChainTruncated` when the chain ends before the
    largest checkpoint's count; both say up to which checkpoint the chain still agrees (a
    rollback agrees up to the copy's end, a rewrite up to the edited record). ``heads`` raises
    what a broken chain raises.
    """
    pending = sorted(checkpoints, key=lambda checkpoint: checkpoint.records)
    position = 0
    matched: Checkpoint | None = None
    empty = end = ChainHead(records=0, head=GENESIS)
    for end in itertools.chain([empty], heads):
        while position < len(pending) and pending[position].records == end.records:
            if pending[position].head != end.head:
                raise _diverged(pending[position], matched)
            matched = pending[position]
            position += 1
    if position < len(pending):
        newest = pending[-1]
        raise AuditChainTruncated(
            f"the audit chain holds {end.records} records, but {newest.describe()} signed "
            f"{newest.records} ({_agreed(matched)}): its last {newest.records - end.records} "
            "records were cut off, or the log was rolled back to an older copy"
        )
    return CheckpointsMatched(
        chain=end, newest=pending[-1] if pending else None, checkpoints=len(pending)
    )
