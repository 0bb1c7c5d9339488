"""The file audit chain stores any entry the caller gives, and keeps its own fields its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from keystore import KeyStore
from keystore.errors import (
    AuditChainDiverged,
    AuditChainTruncated,
    AuditError,
    AuditLogReplaced,
    AuditWriteError,
)
from keystore.file_audit_chain import GENESIS, FileAuditChain, LogEnd
from keystore.sqlite import SqliteDatabase
from keystore.sqlite.audit_log_end import SqliteAuditLogEnd

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


# A child process whose file size limit lets the log grow by only part of a record: the
# kernel's real short write, as a full disk gives one.
APPEND_UNDER_A_FILE_SIZE_LIMIT = """
import json, resource, signal, sys
from pathlib import Path
from keystore.errors import AuditWriteError
from keystore.file_audit_chain import FileAuditChain

path = Path(sys.argv[1])
chain = FileAuditChain(path, b"m" * 32)
chain.append({"what": "before the disk filled"})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 40, hard))
outcomes = []
for attempt in range(2):
    try:
        chain.append({"what": "while the disk is full"})
        outcomes.append("written")
    except AuditWriteError as exc:
        outcomes.append(str(exc))
outcomes.append(path.stat().st_size)
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
chain.append({"what": "after space returned"})
print(json.dumps(outcomes))
"""


def test_a_short_write_is_cut_back_and_appends_resume_when_space_returns(tmp_path: Path) -> None:
    """Disk full mid-record: the torn part is removed, so the next append after it succeeds."""
    path = tmp_path / "audit.log"
    child = subprocess.run(
        [sys.executable, "-c", APPEND_UNDER_A_FILE_SIZE_LIMIT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *refusals, size_while_full = json.loads(child.stdout)
    assert all("took only part of a record" in refusal for refusal in refusals)
    lines = path.read_bytes().splitlines(keepends=True)
    assert size_while_full == len(lines[0])
    chain = FileAuditChain(path, MAC_KEY)
    assert chain.verify().records == 2
    assert [json.loads(line)["what"] for line in chain.records()] == [
        "before the disk filled",
        "after space returned",
    ]


@pytest.fixture
def running_chain(tmp_path: Path) -> FileAuditChain:
    """A writer that has appended three records, as a running service's worker has."""
    chain = FileAuditChain(tmp_path / "audit.log", MAC_KEY, fsync=False)
    for number in range(3):
        chain.append({"what": f"record {number}"})
    return chain


def _deleted(path: Path) -> None:
    path.unlink()


def _moved_aside(path: Path) -> None:
    path.rename(path.with_name("audit.log.1"))


def _replaced_by_a_copy(path: Path) -> None:
    copy = path.with_name("copy")
    shutil.copyfile(path, copy)
    os.replace(copy, path)


def _shrunk_by_one_record(path: Path) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    with path.open("r+b") as handle:
        handle.truncate(sum(len(line) for line in lines[:-1]))


def _rolled_back_then_grown_by_another_chain(path: Path) -> None:
    """The same file (inode) holds an older state that a fresh writer then extended."""
    first_record = path.read_bytes().splitlines(keepends=True)[0]
    with path.open("r+b") as handle:
        handle.truncate(0)
        handle.write(first_record)
    other = FileAuditChain(path, MAC_KEY, fsync=False)
    for number in range(6):
        other.append({"what": f"rewritten {number}"})


@pytest.mark.parametrize(
    ("tamper", "reported"),
    [
        (_deleted, "was deleted or moved"),
        (_moved_aside, "was deleted or moved"),
        (_replaced_by_a_copy, "was replaced by another file"),
        (_shrunk_by_one_record, "shrank from"),
        (_rolled_back_then_grown_by_another_chain, "was rolled back"),
    ],
)
def test_a_running_writer_refuses_a_log_changed_under_it(
    running_chain: FileAuditChain, tamper: Callable[[Path], None], reported: str
) -> None:
    """No new chain from 1 under a running service: the append, and every later one, fails."""
    tamper(running_chain.path)
    for _ in range(2):
        with pytest.raises(AuditLogReplaced, match=reported):
            running_chain.append({"what": "after the tampering"})
        with pytest.raises(AuditLogReplaced, match=reported):
            running_chain.check_writable()


def test_a_second_writer_extending_the_chain_is_followed_not_refused(
    running_chain: FileAuditChain,
) -> None:
    other = FileAuditChain(running_chain.path, MAC_KEY, fsync=False)
    other.append({"what": "from another worker"})
    running_chain.check_writable()
    running_chain.append({"what": "after it"})
    assert running_chain.verify().records == 5


def test_a_torn_tail_makes_the_log_not_writable(running_chain: FileAuditChain) -> None:
    with running_chain.path.open("ab") as handle:
        handle.write(b'{"seq":4,"torn')
    with pytest.raises(AuditWriteError, match="unreadable"):
        running_chain.check_writable()


def test_head_of_a_log_whose_last_record_stays_torn_is_refused(tmp_path: Path) -> None:
    """A torn tail is read again (an append may be landing); one that stays torn is named."""
    path = tmp_path / "audit.log"
    chain = FileAuditChain(path, MAC_KEY, fsync=False)
    chain.append({"what": "whole"})
    whole = chain.head()
    assert whole.records == 1
    with path.open("ab") as log:
        log.write(b'{"what":"half a rec')
    with pytest.raises(AuditError, match="stays torn"):
        FileAuditChain(path, MAC_KEY, fsync=False).head()


@pytest.fixture
def log_end(store: KeyStore, store_path: Path) -> SqliteAuditLogEnd:
    """Where the log ended, recorded in a real SQLite keystore's file."""
    return SqliteAuditLogEnd(SqliteDatabase(store_path))


def written_chain(path: Path, log_end: SqliteAuditLogEnd, records: int) -> FileAuditChain:
    chain = FileAuditChain(path, MAC_KEY, fsync=True, log_end=log_end)
    for number in range(records):
        chain.append({"what": number})
    return chain


def test_the_keystore_records_where_the_log_ended_and_a_restart_chains_on(
    tmp_path: Path, log_end: SqliteAuditLogEnd
) -> None:
    path = tmp_path / "audit.log"
    written_chain(path, log_end, records=3)
    recorded = log_end.recorded()
    assert recorded is not None
    assert (recorded.records, recorded.end) == (3, path.stat().st_size)
    restarted = FileAuditChain(path, MAC_KEY, log_end=log_end)
    restarted.check_recorded_end()
    restarted.append({"what": "after the restart"})
    assert restarted.verify().records == 4
    assert log_end.recorded() == LogEnd(4, restarted.head().head, path.stat().st_size)


def test_concurrent_appends_record_the_last_end_whatever_order_they_finish_in(
    tmp_path: Path, log_end: SqliteAuditLogEnd
) -> None:
    path = tmp_path / "audit.log"
    chain = FileAuditChain(path, MAC_KEY, fsync=True, log_end=log_end)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda number: chain.append({"what": number}), range(64)))
    assert log_end.recorded() == LogEnd(64, chain.head().head, path.stat().st_size)


def delete_the_log(path: Path) -> None:
    path.unlink()


def cut_off_the_last_record(path: Path) -> None:
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))


@pytest.mark.parametrize(
    ("tamper", "refusal", "verify_failure"),
    [
        (delete_the_log, r"audit\.log is missing", "is missing"),
        (cut_off_the_last_record, "holds only", r"holds 2 records.*record 3"),
    ],
)
def test_a_log_deleted_or_cut_while_stopped_is_refused_by_the_next_writer_and_by_verify(
    tmp_path: Path,
    log_end: SqliteAuditLogEnd,
    tamper: Callable[[Path], None],
    refusal: str,
    verify_failure: str,
) -> None:
    """Hostile: a new chain must not start at record 1 over a log deleted or cut short."""
    path = tmp_path / "audit.log"
    written_chain(path, log_end, records=3)
    tamper(path)
    restarted = FileAuditChain(path, MAC_KEY, log_end=log_end)
    with pytest.raises(AuditLogReplaced, match=refusal) as refused:
        restarted.check_recorded_end()
    assert "record 3 (hash" in str(refused.value)
    assert "--start-new-audit-chain" in str(refused.value)
    with pytest.raises(AuditChainTruncated, match=verify_failure):
        restarted.verify()
    before = path.read_bytes() if path.exists() else b""
    with pytest.raises(AuditLogReplaced):
        restarted.append({"what": "a new chain"})
    assert path.read_bytes() == before, "nothing was appended"


def test_another_chain_of_the_same_length_is_refused(
    tmp_path: Path, log_end: SqliteAuditLogEnd
) -> None:
    """Hostile: the log is replaced by another chain just as long (written with the MAC key)."""
    path = tmp_path / "audit.log"
    written_chain(path, log_end, records=2)
    size = path.stat().st_size
    path.unlink()
    forger = FileAuditChain(path, MAC_KEY, fsync=False)
    forger.append({"what": 7})
    forger.append({"what": 8})
    assert path.stat().st_size == size
    restarted = FileAuditChain(path, MAC_KEY, log_end=log_end)
    with pytest.raises(AuditLogReplaced, match="holds another record there"):
        restarted.check_recorded_end()
    with pytest.raises(AuditChainDiverged, match="another record 2"):
        restarted.verify()
