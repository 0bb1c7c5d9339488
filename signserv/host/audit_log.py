"""What signserv writes to the audit chain: one :class:`AuditEvent` per request that names a key.

The chain itself (hash links, MAC, flock, fsync, verification) is storage and lives in
:mod:`keystore.file_audit_chain`; this module fixes the event's fields and the MAC key's purpose.
Never written: tokens, inputs, signatures.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from keystore.errors import AuditChainBroken, AuditError, AuditLogReplaced, AuditWriteError
from keystore.file_audit_chain import FileAuditChain, read_lines
from keystore.file_audit_chain import verify_chain as verify_log
from keystore.records import AuditChainStore, VerifiedChain

__all__ = [
    "AUDIT_MAC_PURPOSE",
    "AuditChainBroken",
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "AuditLogReplaced",
    "AuditWriteError",
    "VerifiedChain",
    "read_lines",
    "verify_log",
]

AUDIT_MAC_PURPOSE = "audit-mac"


@dataclass(frozen=True)
class AuditEvent:
    """What one request did, without any secret or input byte."""

    request_id: str
    client: str
    key: str
    operation: str
    status: int
    outcome: str
    input_sha512: str | None
    input_length: int | None
    latency_ms: float
    signed: dict[str, object] | None = None
    """What the input is in TKE terms (:meth:`signserv.tke.wire.signed_input.SignedInput.as_record`)."""


class AuditLog:
    """Appends :class:`AuditEvent` records to an audit chain (a file, or a shared database)."""

    def __init__(self, chain: AuditChainStore) -> None:
        self._chain = chain

    @classmethod
    def in_file(cls, path: Path, mac_key: bytes, fsync: bool = True) -> AuditLog:
        """The audit log in the file at ``path``."""
        return cls(FileAuditChain(path, mac_key, fsync))

    def append(self, event: AuditEvent) -> None:
        """Chain one record and make it durable, or raise :class:`AuditWriteError`."""
        self._chain.append(dataclasses.asdict(event))

    def check_writable(self) -> None:
        """Raise :class:`AuditWriteError` unless a record could be written now (for /readyz)."""
        self._chain.check_writable()
