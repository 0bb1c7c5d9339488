"""The audit chain in one file: append-only, hash-chained, MAC'd, and its verifier (DESIGN §5).

An :class:`keystore.records.AuditChainStore`. One JSON line per entry; what an entry says is
the caller's business (signserv writes one per request that names a key). The chain adds
``seq`` (1, 2, …), ``time``, ``prev`` (SHA-256 of the previous line's bytes; 64 zeros for the
first) and ``mac`` (HMAC-SHA256 of the line without ``mac``, keyed from the master key).
Editing, deleting, inserting or reordering any record therefore breaks the chain or a MAC, and
rewriting the whole chain needs the master key. A cut-off tail is not detectable from the file
alone: ``verify`` reports the head hash so it can be anchored elsewhere.

Workers append under an exclusive ``flock`` on the log file, so several processes keep one
chain. A record is fsync'ed before its request is answered; the fsync runs after the lock is
released, and threads of one worker share it (group commit), so appends do not queue on the
disk. A record that cannot be written raises :class:`AuditWriteError`; callers fail closed.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from keystore.errors import AuditChainBroken, AuditError, AuditWriteError
from keystore.records import VerifiedChain

GENESIS = "0" * 64
_HEAD_WINDOW = 4 * 1024
_TAIL_WINDOW = 64 * 1024
_APPEND_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT
_CHAIN_FIELDS = frozenset({"seq", "time", "prev", "mac"})


@dataclass(frozen=True)
class _Written:
    """How many records this process had written when one landed, and in which file (inode)."""

    inode: int
    count: int


def line_hash(line: bytes) -> str:
    """The hash the next record's ``prev`` holds."""
    return hashlib.sha256(line).hexdigest()


def _mac(mac_key: bytes, unsigned_line: bytes) -> str:
    return hmac.new(mac_key, unsigned_line, hashlib.sha256).hexdigest()


def _encode(fields: dict[str, object]) -> bytes:
    return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _signed_line(fields: dict[str, object], mac_key: bytes) -> bytes:
    unsigned = _encode(fields)
    return _encode({**fields, "mac": _mac(mac_key, unsigned)})


def refuse_chain_fields(entry: Mapping[str, object]) -> None:
    """Raise ValueError when ``entry`` sets a field the chain owns (a forged ``seq`` or ``prev``)."""
    reserved = _CHAIN_FIELDS.intersection(entry)
    if reserved:
        raise ValueError(f"an audit entry may not set the chain's fields {sorted(reserved)}")


def chained_record(entry: Mapping[str, object], seq: int, prev: str, mac_key: bytes) -> bytes:
    """The stored encoding of ``entry`` as record ``seq`` after the record whose hash is ``prev``."""
    fields: dict[str, object] = {
        **entry,
        "seq": seq,
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "prev": prev,
    }
    return _signed_line(fields, mac_key)


class FileAuditChain:
    """Appends records to one file shared by every worker."""

    def __init__(self, path: Path, mac_key: bytes, fsync: bool = True) -> None:
        self.path = path
        self._mac_key = mac_key
        self._fsync = fsync
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._records_written = 0
        self._synced = _Written(inode=-1, count=0)
        self._known_end = -1
        self._known_head = GENESIS
        self._known_seq = 0

    def append(self, entry: Mapping[str, object]) -> None:
        """Write one record at the end of the chain and make it durable, or raise :class:`AuditWriteError`."""
        refuse_chain_fields(entry)
        try:
            descriptor = self._open()
            try:
                with self._lock:
                    written = self._append_locked(descriptor, entry)
                if self._fsync:
                    self._sync_through(descriptor, written)
            finally:
                os.close(descriptor)
        except (OSError, ValueError) as exc:
            raise AuditWriteError(f"cannot write the audit log {self.path}: {exc}") from None

    def _open(self) -> int:
        """Open the log for appending, creating it (0600) and its directory (0700) when missing."""
        try:
            return os.open(self.path, _APPEND_FLAGS, 0o600)
        except FileNotFoundError:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(self.path, _APPEND_FLAGS, 0o600)

    def _append_locked(self, descriptor: int, entry: Mapping[str, object]) -> _Written:
        """Append under the file lock (so every worker keeps one chain); fsync comes after."""
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            status = os.fstat(descriptor)
            end = status.st_size
            if end != self._known_end:
                self._read_head(descriptor, end)
            line = chained_record(entry, self._known_seq + 1, self._known_head, self._mac_key)
            record = line + b"\n"
            if os.write(descriptor, record) != len(record):
                # A short write (disk full, file size limit) left a torn record: fail closed.
                raise AuditWriteError(f"the audit log {self.path} took only part of a record")
            self._known_end = end + len(line) + 1
            self._known_head = line_hash(line)
            self._known_seq += 1
            self._records_written += 1
            return _Written(inode=status.st_ino, count=self._records_written)
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)

    def _sync_through(self, descriptor: int, written: _Written) -> None:
        """Return once an fsync that began after ``written`` landed has finished (group commit)."""
        # One fsync covers every record this process wrote to the same file before it began, so
        # threads queued here behind it return without another one.
        with self._sync_lock:
            if self._synced.inode == written.inode and self._synced.count >= written.count:
                return
            covered = _Written(inode=written.inode, count=self._records_written)
            os.fsync(descriptor)
            self._synced = covered

    def _read_head(self, descriptor: int, end: int) -> None:
        """Learn the last record's hash and seq (another worker wrote since our last append)."""
        if end == 0:
            self._known_head, self._known_seq = GENESIS, 0
            return
        # A record is about 500 bytes: a small read finds the last one; a long one needs more.
        for window in (_HEAD_WINDOW, _TAIL_WINDOW):
            start = max(0, end - window)
            tail = os.pread(descriptor, end - start, start)
            if start == 0 or b"\n" in tail[:-1]:
                break
        last = tail[:-1].rsplit(b"\n", 1)[-1]
        try:
            if not tail.endswith(b"\n"):
                raise ValueError("torn last line")
            self._known_seq = int(json.loads(last)["seq"])
        except (ValueError, KeyError, TypeError, RecursionError):
            # Fail closed: chaining onto a record we cannot read would hide the damage.
            raise AuditWriteError(
                f"the last record of {self.path} is unreadable (torn write?); run "
                "`signserv audit verify`, then move the file aside to start a new chain"
            ) from None
        self._known_head = line_hash(last)

    def records(self) -> Iterator[bytes]:
        """The raw lines of the log, without their newlines."""
        return read_lines(self.path)

    def verify(self) -> VerifiedChain:
        """Check every record's seq, chain link and MAC (see :func:`verify_chain`)."""
        return verify_chain(self.path, self._mac_key)


def read_lines(path: Path) -> Iterator[bytes]:
    """The raw lines of a log, without their newlines."""
    with path.open("rb") as handle:
        for line in handle:
            yield line.rstrip(b"\n")


def verify_chain(path: Path, mac_key: bytes) -> VerifiedChain:
    """Check every record's seq, chain link and MAC; raise :class:`AuditChainBroken` at the first fault."""
    try:
        lines = list(read_lines(path))
    except OSError as exc:
        raise AuditError(f"cannot read the audit log {path}: {exc.strerror}") from None
    return verify_records(lines, mac_key)


def verify_records(lines: Iterable[bytes], mac_key: bytes) -> VerifiedChain:
    """Check each stored record, oldest first (``line`` numbers count from 1 in that order)."""
    previous_hash = GENESIS
    count = 0
    for number, line in enumerate(lines, start=1):
        try:
            fields = json.loads(line)
            mac = fields.pop("mac")
            seq = fields["seq"]
            prev = fields["prev"]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise AuditChainBroken(number, "not a complete audit record (torn or edited)") from None
        expected = _mac(mac_key, _encode(fields)).encode("ascii")
        if not hmac.compare_digest(str(mac).encode("utf-8"), expected):
            raise AuditChainBroken(
                number, f"record {seq} was altered or forged: its MAC does not match"
            )
        if seq != count + 1:
            raise AuditChainBroken(
                number,
                f"holds record {seq} where record {count + 1} belongs "
                + (
                    "(a record is missing)"
                    if isinstance(seq, int) and seq > count + 1
                    else "(records reordered)"
                ),
            )
        if prev != previous_hash:
            raise AuditChainBroken(number, f"record {seq} does not follow the record before it")
        previous_hash = line_hash(line)
        count += 1
    return VerifiedChain(records=count, head=previous_hash)
