"""The file audit chain stores any entry the caller gives, and keeps its own fields its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from keystore.errors import AuditError, AuditLogReplaced, AuditWriteError
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
