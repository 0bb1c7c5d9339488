"""What signserv writes to the audit chain: one :class:`AuditEvent` per request that names a key.

The chain itself (hash links, MAC, flock, fsync, verification) is storage and lives in
:mod:`keystore.file_audit_chain`; this module fixes the event's fields and the purposes of the MAC
and checkpoint keys.
Never written: tokens, inputs, signatures.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from keystore.errors import AuditChainBroken, AuditError, AuditLogReplaced, AuditWriteError
from keystore.file_audit_chain import FileAuditChain, read_lines
from keystore.file_audit_chain import verify_chain as verify_log
from keystore.records import AuditChainStore, VerifiedChain
from signserv.tke.wire.signed_input import SignedInput

__all__ = [
    "AUDIT_CHECKPOINT_PURPOSE",
    "AUDIT_MAC_PURPOSE",
    "AuditChainBroken",
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "AuditLogReplaced",
    "AuditWriteError",
    "VerifiedChain",
    "read_lines",
    "record_in_words",
    "verify_log",
]

AUDIT_MAC_PURPOSE = "audit-mac"
AUDIT_CHECKPOINT_PURPOSE = "audit-checkpoint"
"""The server secret whose 32 bytes are the Ed25519 seed of the audit checkpoint key."""


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
    rule: str | None = None
    """The key-policy rule that refused the request (see :mod:`signserv.host.key_policy`)."""


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


def _printable(text: str) -> str:
    """``text`` with every control character escaped, so a record cannot drive a terminal."""
    return "".join(
        character if character.isprintable() else repr(character)[1:-1] for character in text
    )


def _what_was_signed(record: dict[str, object]) -> str:
    signed = record.get("signed")
    if signed is None:
        digest = record.get("input_sha512")
        return "" if digest is None else f"input SHA-512 {str(digest)[:16]}…"
    try:
        if not isinstance(signed, dict):
            raise ValueError("not an object")
        return SignedInput.from_record(signed).in_words()
    except (KeyError, ValueError):
        return "(an unreadable description)"


def record_in_words(line: bytes) -> str:
    """One stored audit record as a line for people (``signserv audit tail``).

    ``#17 2026-12-01T10:00:00.000+00:00 127.0.0.1 sign admin1 200 ok: add administrator
    'Admin 2' (SKI 5f0c…) to domain 3 of module 93AABEC1, counter 17``; a policy refusal adds
    its rule after the outcome: ``403 policy_refused (kind zeroize not allowed): zeroize …``.
    The record is not verified here (``audit verify`` does that); whatever it holds is shown
    escaped.
    """
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except ValueError:
        return _printable(f"(not a record: {line[:80]!r})")
    fields = ("time", "client", "operation", "key", "status", "outcome")
    text = f"#{record.get('seq')} " + " ".join(str(record.get(field)) for field in fields)
    if record.get("rule") is not None:
        text += f" ({record['rule']})"
    signed = _what_was_signed(record)
    return _printable(f"{text}: {signed}" if signed else text)
