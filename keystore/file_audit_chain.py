"""The audit chain in one file: append-only, hash-chained, MAC'd, and its verifier (DESIGN §5).

An :class:`keystore.records.AuditChainStore`. One JSON line per entry; what an entry says is
the caller's business (signserv writes one per request that names a key). The chain adds
``seq`` (1, 2, …), ``time``, ``prev`` (SHA-256 of the previous line's bytes; 64 zeros for the
first) and ``mac`` (HMAC-SHA256 of the line without ``mac``, keyed from the master key).
Editing, deleting, inserting or reordering any record therefore breaks the chain or a MAC, and
rewriting the whole chain needs the master key. A cut-off tail is not detectable from the file
alone, so a writer given a :class:`LogEndRecord` records, outside the file (in the keystore),
the count, hash and byte offset of the last record it made durable; a writer starting later
(a restarted or replaced service) and ``verify`` refuse a log that does not hold that record
where it ended: deleted, cut short, or replaced by another chain.

Workers append under an exclusive ``flock`` on the log file, so several processes keep one
chain. A record is fsync'ed before its request is answered; the fsync runs after the lock is
released, and threads of one worker share it (group commit), so appends do not queue on the
disk. A record that cannot be written raises :class:`AuditWriteError`; callers fail closed.

A writer keeps one descriptor open and knows the file it writes (device and inode), where its
last record ended and that record's hash. It refuses to go on (:class:`AuditLogReplaced`) when
the path names another file (deleted, moved, replaced by a copy), when the file is shorter than
its known end, or when the record at that end is no longer the one it knew (rolled back); so a
new chain never starts silently under a running service. A write that fails part-way (disk
full, file size limit) is cut back to the previous end, so the next one succeeds once space
returns.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from keystore.errors import (
    AuditChainBroken,
    AuditChainDiverged,
    AuditChainTruncated,
    AuditError,
    AuditLogReplaced,
    AuditWriteError,
    KeystoreError,
)
from keystore.records import ChainHead, VerifiedChain

GENESIS = "0" * 64
_HEAD_WINDOW = 4 * 1024
_TAIL_WINDOW = 64 * 1024
_APPEND_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT
_CHAIN_FIELDS = frozenset({"seq", "time", "prev", "mac"})
_TORN_TAIL_READS = 5
_TORN_TAIL_PAUSE_SECONDS = 0.01
MIN_FREE_BYTES = 1024 * 1024
"""Below this much free space on the log's file system, the log reports itself not writable."""


@dataclass(frozen=True)
class LogEnd(ChainHead):
    """A chain's head, and the byte offset in the log file where its last record's line ends."""

    end: int

    def describe(self) -> str:
        return f"record {self.records} (hash {self.head}) ending at byte {self.end}"


class LogEndRecord(Protocol):
    """Where the log file ended when last written, kept outside it (in the keystore)."""

    def recorded(self) -> LogEnd | None:
        """The end last recorded, or None."""

    def advance(self, end: LogEnd) -> None:
        """Record ``end`` unless one at least as far on is recorded."""


@dataclass(frozen=True)
class _Written:
    """How many records this process had written when one landed, and in which file (inode)."""

    inode: int
    count: int


@dataclass(frozen=True)
class _OpenLog:
    """The descriptor this process appends through, the process that opened it, and its file."""

    descriptor: int
    pid: int
    device: int
    inode: int


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


def _last_line(descriptor: int, end: int) -> bytes | None:
    """The line that ends at byte ``end`` (without its newline); None when it is torn."""
    # A record is about 500 bytes: a small read finds the last one; a long one needs more.
    for window in (_HEAD_WINDOW, _TAIL_WINDOW):
        start = max(0, end - window)
        tail = os.pread(descriptor, end - start, start)
        if start == 0 or b"\n" in tail[:-1]:
            break
    if not tail.endswith(b"\n"):
        return None
    return tail[:-1].rsplit(b"\n", 1)[-1]


class FileAuditChain:
    """Appends records to one file shared by every worker."""

    def __init__(
        self,
        path: Path,
        mac_key: bytes,
        fsync: bool = True,
        log_end: LogEndRecord | None = None,
    ) -> None:
        self.path = path
        self._mac_key = mac_key
        self._fsync = fsync
        self._log_end = log_end
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._record_lock = threading.Lock()
        self._records_written = 0
        self._synced = _Written(inode=-1, count=0)
        self._open_log: _OpenLog | None = None
        self._known_end = -1
        self._known_head = GENESIS
        self._known_seq = 0
        self._written_end: LogEnd | None = None  # the last record this process wrote
        self._durable_end: LogEnd | None = None  # the last one an fsync of this process covered
        self._recorded_records = 0

    def append(self, entry: Mapping[str, object]) -> None:
        """Write one record at the end of the chain and make it durable, or raise :class:`AuditWriteError`."""
        refuse_chain_fields(entry)
        try:
            with self._lock:
                log = self._opened()
                written = self._append_locked(log, entry)
            if self._fsync:
                self._sync_through(log.descriptor, written)
        except (OSError, ValueError) as exc:
            raise AuditWriteError(f"cannot write the audit log {self.path}: {exc}") from None
        self._record_end()

    def _record_end(self) -> None:
        """Record the end of the last durable record in the keystore (after the fsync, so the
        record never runs ahead of the file); one write covers every thread queued behind it."""
        if self._log_end is None:
            return
        with self._record_lock:
            end = self._durable_end if self._fsync else self._written_end
            if end is None or end.records <= self._recorded_records:
                return
            try:
                self._log_end.advance(end)
            except KeystoreError as exc:
                raise AuditWriteError(
                    f"cannot record the end of the audit log {self.path} in the keystore: {exc}"
                ) from None
            self._recorded_records = end.records

    def check_recorded_end(self) -> None:
        """Raise :class:`AuditLogReplaced` unless the log holds the last record the keystore
        recorded, where it ended (for a service about to start; reads, never creates, the file)."""
        recorded = self._log_end.recorded() if self._log_end is not None else None
        if recorded is None or recorded.records == 0:
            return
        try:
            descriptor = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise self._behind_record(recorded, "is missing") from None
        except OSError as exc:
            raise AuditError(f"cannot read the audit log {self.path}: {exc.strerror}") from None
        try:
            self._require_recorded_end(descriptor, os.fstat(descriptor).st_size, recorded)
        finally:
            os.close(descriptor)

    def _require_recorded_end(self, descriptor: int, size: int, recorded: LogEnd) -> None:
        if size < recorded.end:
            raise self._behind_record(recorded, f"holds only {size} bytes")
        line = _last_line(descriptor, recorded.end)
        if line is None or line_hash(line) != recorded.head:
            raise self._behind_record(recorded, "holds another record there")

    def _behind_record(self, recorded: LogEnd, what_it_is: str) -> AuditLogReplaced:
        return AuditLogReplaced(
            f"the audit log {self.path} {what_it_is}, but the keystore recorded that it holds "
            f"{recorded.describe()}: it was deleted, cut short or replaced since. Refusing to "
            "start a new chain silently. Put the log back (a copy that holds that record), or "
            "point audit.path at it; if it is lost for good, move what is left of it aside and "
            "run `signserv serve --start-new-audit-chain` once"
        )

    def check_writable(self) -> None:
        """Raise :class:`AuditWriteError` unless the next append would find its file whole and room to land.

        The same checks as an append (file identity, known end and head, a readable last
        record) plus :data:`MIN_FREE_BYTES` free on the file system; nothing is written.
        """
        try:
            with self._lock:
                log = self._opened()
                fcntl.flock(log.descriptor, fcntl.LOCK_EX)
                try:
                    self._follow_file(log)
                finally:
                    fcntl.flock(log.descriptor, fcntl.LOCK_UN)
            space = os.fstatvfs(log.descriptor)
        except OSError as exc:
            raise AuditWriteError(f"cannot write the audit log {self.path}: {exc}") from None
        if space.f_bavail * space.f_frsize < MIN_FREE_BYTES:
            raise AuditWriteError(
                f"the file system of the audit log {self.path} has less than "
                f"{MIN_FREE_BYTES // 1024} KiB free"
            )

    def _opened(self) -> _OpenLog:
        """This process's descriptor on the log (call with ``_lock`` held), opened on first use.

        Opened once, not per record: the identity check in :meth:`_follow_file` is what notices
        a replaced file. A forked child opens its own, so that ``flock`` tells processes apart.
        """
        if self._open_log is not None and self._open_log.pid == os.getpid():
            return self._open_log
        try:
            descriptor = os.open(self.path, _APPEND_FLAGS, 0o600)
        except FileNotFoundError:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(self.path, _APPEND_FLAGS, 0o600)
        status = os.fstat(descriptor)
        self._open_log = _OpenLog(descriptor, os.getpid(), status.st_dev, status.st_ino)
        return self._open_log

    def _append_locked(self, log: _OpenLog, entry: Mapping[str, object]) -> _Written:
        """Append under the file lock (so every worker keeps one chain); fsync comes after."""
        fcntl.flock(log.descriptor, fcntl.LOCK_EX)
        try:
            end = self._follow_file(log)
            line = chained_record(entry, self._known_seq + 1, self._known_head, self._mac_key)
            self._write_whole_or_nothing(log.descriptor, line + b"\n", end)
            self._known_end = end + len(line) + 1
            self._known_head = line_hash(line)
            self._known_seq += 1
            self._records_written += 1
            self._written_end = LogEnd(self._known_seq, self._known_head, self._known_end)
            return _Written(inode=log.inode, count=self._records_written)
        finally:
            fcntl.flock(log.descriptor, fcntl.LOCK_UN)

    def _write_whole_or_nothing(self, descriptor: int, record: bytes, end: int) -> None:
        """Append ``record``; if only part of it (or none) landed, cut the file back to ``end``."""
        try:
            written = os.write(descriptor, record)
        except OSError as exc:
            self._cut_back(descriptor, end)
            raise AuditWriteError(
                f"cannot write the audit log {self.path}: {exc.strerror}; nothing was kept"
            ) from None
        if written != len(record):
            self._cut_back(descriptor, end)
            raise AuditWriteError(
                f"the audit log {self.path} took only part of a record (disk full or file size "
                "limit); the part was cut off again"
            )

    def _cut_back(self, descriptor: int, end: int) -> None:
        try:
            os.ftruncate(descriptor, end)
        except OSError as exc:
            raise AuditWriteError(
                f"the audit log {self.path} holds a torn record that cannot be cut off "
                f"({exc.strerror}); run `signserv audit verify`"
            ) from None

    def _follow_file(self, log: _OpenLog) -> int:
        """Check the log is still the file this process knows and learn what others appended.

        Call under the file lock. Returns the file's end.
        """
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            raise self._replaced("was deleted or moved") from None
        if (named.st_dev, named.st_ino) != (log.device, log.inode):
            raise self._replaced("was replaced by another file")
        end = os.fstat(log.descriptor).st_size
        if self._known_end < 0 and self._log_end is not None:
            # First look at the file in this process: it must continue the recorded chain.
            recorded = self._log_end.recorded()
            if recorded is not None and recorded.records > 0:
                self._require_recorded_end(log.descriptor, end, recorded)
        if end < self._known_end:
            raise self._replaced(f"shrank from {self._known_end} to {end} bytes")
        if end != self._known_end:
            self._require_known_head_at_known_end(log.descriptor)
            self._read_head(log.descriptor, end)
            self._known_end = end
        return end

    def _replaced(self, what_happened: str) -> AuditLogReplaced:
        return AuditLogReplaced(
            f"the audit log {self.path} {what_happened} while this service was writing it; "
            "refusing every request until the service is restarted (check the log with "
            "`signserv audit verify` first)"
        )

    def _require_known_head_at_known_end(self, descriptor: int) -> None:
        """The record this process last knew must still end where it did (no rollback)."""
        if self._known_end <= 0:
            return
        line = _last_line(descriptor, self._known_end)
        if line is None or line_hash(line) != self._known_head:
            raise self._replaced("was rolled back (its known last record changed)")

    def _sync_through(self, descriptor: int, written: _Written) -> None:
        """Return once an fsync that began after ``written`` landed has finished (group commit)."""
        # One fsync covers every record this process wrote to the same file before it began, so
        # threads queued here behind it return without another one.
        with self._sync_lock:
            if self._synced.inode == written.inode and self._synced.count >= written.count:
                return
            with self._lock:
                covered = _Written(inode=written.inode, count=self._records_written)
                covered_end = self._written_end
            os.fsync(descriptor)
            self._synced = covered
            self._durable_end = covered_end

    def _read_head(self, descriptor: int, end: int) -> None:
        """Learn the last record's hash and seq (another worker wrote since our last append)."""
        if end == 0:
            self._known_head, self._known_seq = GENESIS, 0
            return
        last = _last_line(descriptor, end)
        try:
            if last is None:
                raise ValueError("torn last line")
            self._known_seq = int(json.loads(last)["seq"])
        except (ValueError, KeyError, TypeError, RecursionError):
            # Fail closed: chaining onto a record we cannot read would hide the damage.
            raise AuditWriteError(
                f"the last record of {self.path} is unreadable (torn write?); run "
                "`signserv audit verify`, then move the file aside to start a new chain (`signserv "
                "serve --start-new-audit-chain`)"
            ) from None
        self._known_head = line_hash(last)

    def records(self) -> Iterator[bytes]:
        """The raw lines of the log, without their newlines."""
        return read_lines(self.path)

    def head(self) -> ChainHead:
        """The count and hash of the last record in the file (its MAC checked), read from the tail.

        Takes no lock: a lock held by gunicorn's arbiter while it forks a worker would be
        inherited by the worker and block its appends. A record still being written shows as a
        torn tail, read again a moment later.
        """
        for _ in range(_TORN_TAIL_READS):
            try:
                with self.path.open("rb") as handle:
                    end = os.fstat(handle.fileno()).st_size
                    last = _last_line(handle.fileno(), end) if end else b""
            except FileNotFoundError:
                return ChainHead(records=0, head=GENESIS)
            except OSError as exc:
                raise AuditError(f"cannot read the audit log {self.path}: {exc.strerror}") from None
            if last is not None:
                return head_of_last_record(last, self._mac_key) if end else ChainHead(0, GENESIS)
            time.sleep(_TORN_TAIL_PAUSE_SECONDS)
        raise AuditError(f"the last record of {self.path} stays torn; run `signserv audit verify`")

    def verify(self) -> VerifiedChain:
        """Check every record's seq, chain link and MAC (see :func:`verify_chain`), and that the
        chain still holds the last record the keystore recorded: :class:`AuditChainTruncated`
        when it ends before it (deleted, cut short), :class:`AuditChainDiverged` when another
        record stands in its place."""
        recorded = self._log_end.recorded() if self._log_end is not None else None
        if recorded is None or recorded.records == 0:
            return verify_chain(self.path, self._mac_key)
        if not self.path.exists():
            raise AuditChainTruncated(
                f"the audit log {self.path} is missing, but the keystore recorded that it holds "
                f"{recorded.describe()}"
            )
        end = ChainHead(records=0, head=GENESIS)
        at_recorded: ChainHead | None = None
        for end in chain_heads(self.records(), self._mac_key):
            if end.records == recorded.records:
                at_recorded = end
        if at_recorded is None:
            raise AuditChainTruncated(
                f"the audit log {self.path} holds {end.records} records, but the keystore "
                f"recorded that it holds {recorded.describe()}: its tail was cut off"
            )
        if at_recorded.head != recorded.head:
            raise AuditChainDiverged(
                f"the audit log {self.path} holds another record {recorded.records} than the "
                f"keystore recorded ({recorded.describe()}): the log was replaced or rewritten"
            )
        return VerifiedChain(records=end.records, head=end.head)


def read_lines(path: Path) -> Iterator[bytes]:
    """The raw lines of a log, without their newlines; raises :class:`AuditError` if unreadable."""
    try:
        with path.open("rb") as handle:
            for line in handle:
                yield line.rstrip(b"\n")
    except OSError as exc:
        raise AuditError(f"cannot read the audit log {path}: {exc.strerror}") from None


def verify_chain(path: Path, mac_key: bytes) -> VerifiedChain:
    """Check every record's seq, chain link and MAC; raise :class:`AuditChainBroken` at the first fault."""
    return verify_records(read_lines(path), mac_key)


def verify_records(lines: Iterable[bytes], mac_key: bytes) -> VerifiedChain:
    """Check each stored record, oldest first (``line`` numbers count from 1 in that order)."""
    last = deque(chain_heads(lines, mac_key), maxlen=1)
    end = last[0] if last else ChainHead(records=0, head=GENESIS)
    return VerifiedChain(records=end.records, head=end.head)


def chain_heads(lines: Iterable[bytes], mac_key: bytes | None) -> Iterator[ChainHead]:
    """Where the chain ends after each record, oldest first, checking seq and link as it goes.

    Each MAC is checked too when ``mac_key`` is given; without it (a verifier holding only the
    checkpoint key) the hash links alone tie every record to a signed checkpoint's head.
    Raises :class:`AuditChainBroken` at the first fault.
    """
    previous_hash = GENESIS
    for number, line in enumerate(lines, start=1):
        try:
            fields = json.loads(line)
            mac = fields.pop("mac")
            seq = fields["seq"]
            prev = fields["prev"]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise AuditChainBroken(number, "not a complete audit record (torn or edited)") from None
        if mac_key is not None and not _mac_matches(mac_key, fields, mac):
            raise AuditChainBroken(
                number, f"record {seq} was altered or forged: its MAC does not match"
            )
        if seq != number:
            raise AuditChainBroken(
                number,
                f"holds record {seq} where record {number} belongs "
                + (
                    "(a record is missing)"
                    if isinstance(seq, int) and seq > number
                    else "(records reordered)"
                ),
            )
        if prev != previous_hash:
            raise AuditChainBroken(number, f"record {seq} does not follow the record before it")
        previous_hash = line_hash(line)
        yield ChainHead(records=number, head=previous_hash)


def _mac_matches(mac_key: bytes, fields: dict[str, object], mac: object) -> bool:
    expected = _mac(mac_key, _encode(fields)).encode("ascii")
    return hmac.compare_digest(str(mac).encode("utf-8"), expected)


def head_of_last_record(line: bytes, mac_key: bytes) -> ChainHead:
    """The chain's head when ``line`` is its last record, once that record's MAC checks out."""
    try:
        fields = json.loads(line)
        mac = fields.pop("mac")
        seq = fields["seq"]
        if not isinstance(seq, int) or seq < 1:
            raise ValueError("no record number")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise AuditError(
            "the last audit record is not a complete record (torn or edited)"
        ) from None
    if not _mac_matches(mac_key, fields, mac):
        raise AuditChainBroken(seq, f"record {seq}, the last, was altered or forged")
    return ChainHead(records=seq, head=line_hash(line))
