"""Master-key rotation: a file protocol that survives being killed at any moment.

DESIGN §3. Files beside the master key file ``master.key``:

1. ``master.key.next``: the new key, written atomically (0600) before the keystore changes.
2. One transaction re-seals every master share and the master-key check under the new key.
3. Promotion: ``master.key`` is hard-linked to ``master.key.old``, then ``master.key.next``
   replaces ``master.key`` (``os.replace``); ``master.key`` therefore exists at every moment.

The keystore itself says how far a rotation got: while ``master.key.next`` exists, the database
opens with exactly one of the two keys. If that is ``master.key``, the rotation never committed
and ``master.key.next`` is deleted; if it is ``master.key.next``, the promotion is finished.
Before asking, the storage decides a commit the kill may have cut short, so the answer cannot
change afterwards (:meth:`KeystoreLocation.settle_commits`). The keystore is any backend's
(:class:`KeystoreLocation`); with PostgreSQL, replicas that share the master key file follow
the rotation on their next cold unlock.
:func:`settle_interrupted_rotation` applies that rule; opening a keystore runs it first. A
``master.key.lock`` (flock) keeps an opener from settling a rotation that is still running.

``master.key.old`` is kept: backups made before the rotation are sealed under it. A rotation
refuses to start while it exists, so a retired key is never overwritten.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from foundation import fsync_path
from keystore.crypto import Argon2Runner, MasterKey
from keystore.errors import KeystoreError, MasterKeyExists, MasterKeyMismatch, MasterKeyMissing
from keystore.master_key_file import read_master_key, write_master_key
from keystore.signing_key import KeyBackend
from keystore.store import KeyStore


class KeystoreLocation(Protocol):
    """Where the keystore lives, as the rotation protocol needs it, whatever the backend."""

    def exists(self) -> bool:
        """False when there is no keystore (a restore may bring it back)."""

    def settle_commits(self) -> None:
        """Decide a commit that a kill may have cut short, so that what opens cannot change."""

    def open(
        self,
        master_key: MasterKey,
        argon2: Argon2Runner,
        reload_master_key: Callable[[], MasterKey] | None = None,
        key_backends: Sequence[KeyBackend] = (),
    ) -> KeyStore:
        """Open the keystore with ``master_key`` (raises :class:`MasterKeyMismatch`); see
        :meth:`keystore.KeyStore.open` for the rest."""


class MasterKeyRotationFailed(KeystoreError):
    """The rotation could not run or finish; the keystore still opens with one of the two keys."""


@dataclass(frozen=True)
class RotationFiles:
    """The files of the protocol, all in the master key file's directory."""

    current: Path

    @property
    def next(self) -> Path:
        return self.current.with_name(self.current.name + ".next")

    @property
    def previous(self) -> Path:
        return self.current.with_name(self.current.name + ".old")

    @property
    def lock(self) -> Path:
        return self.current.with_name(self.current.name + ".lock")


@dataclass(frozen=True)
class RotationResult:
    """What a rotation did, for the CLI to report."""

    resealed_keys: int
    retired_master_key_file: Path


@contextmanager
def _rotation_lock(files: RotationFiles) -> Iterator[bool]:
    """Hold ``master.key.lock``; the kernel releases it when the holder dies, even by SIGKILL.

    Yields False, holding nothing, when the lock file cannot be created (a read-only directory
    such as a mounted secret): no rotation can run there either.
    """
    try:
        descriptor = os.open(files.lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield False
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(descriptor)


def _opens_with(location: KeystoreLocation, key_file: Path, argon2: Argon2Runner) -> bool:
    """True when the keystore opens with the key in ``key_file``; damage is raised, not hidden."""
    try:
        store = location.open(read_master_key(key_file), argon2)
    except (MasterKeyMismatch, MasterKeyMissing):
        return False
    store.close()
    return True


def _same_file_content(first: Path, second: Path) -> bool:
    return first.read_bytes() == second.read_bytes()


def _promote_next(files: RotationFiles) -> None:
    """Step 3: keep the old key as ``.old``, then make ``.next`` the master key, atomically."""
    if files.current.exists():
        if not files.previous.exists():
            os.link(files.current, files.previous)
        elif not _same_file_content(files.previous, files.current):
            raise MasterKeyRotationFailed(
                f"cannot finish the master-key rotation: {files.previous} holds another key; "
                "move it away (it may open old backups) and run the command again"
            )
    os.replace(files.next, files.current)
    fsync_path(files.current.parent)


def _remove_abandoned_next(files: RotationFiles) -> None:
    """Delete a ``.next`` that never sealed a committed record, and any half-written copy of it."""
    files.next.unlink(missing_ok=True)
    # write_master_key's temporary files are named ".<name>.<pid>.tmp"; a kill can leave one.
    for leftover in files.next.parent.glob(f".{files.next.name}.*.tmp"):
        leftover.unlink(missing_ok=True)
    fsync_path(files.current.parent)


def _settle_locked(files: RotationFiles, location: KeystoreLocation, argon2: Argon2Runner) -> None:
    if not location.exists():
        return  # nothing to decide; a restore may bring the keystore back
    location.settle_commits()
    if _opens_with(location, files.current, argon2):
        _remove_abandoned_next(files)
    elif files.next.exists() and _opens_with(location, files.next, argon2):
        _promote_next(files)


def settle_interrupted_rotation(
    master_key_file: Path, location: KeystoreLocation, argon2: Argon2Runner
) -> None:
    """Finish or undo a rotation that was killed part-way; a no-op when none was under way.

    Waits for a rotation that is still running. When the keystore opens with neither key,
    every file is left as it is for the operator, and opening the keystore reports the mismatch.
    """
    files = RotationFiles(master_key_file)
    if not files.next.exists():
        return
    with _rotation_lock(files):
        if files.next.exists():
            _settle_locked(files, location, argon2)


@contextmanager
def settled_master_key(
    master_key_file: Path, location: KeystoreLocation, argon2: Argon2Runner
) -> Iterator[None]:
    """Within the block, no rotation runs and ``master_key_file`` holds the keystore's key.

    For backup and restore, whose result must match the master key they report or use.
    """
    files = RotationFiles(master_key_file)
    with _rotation_lock(files):
        if files.next.exists():
            _settle_locked(files, location, argon2)
        yield


def rotate_master_key(
    master_key_file: Path, location: KeystoreLocation, argon2: Argon2Runner
) -> RotationResult:
    """Replace the master key and re-seal every record under it; needs no token."""
    files = RotationFiles(master_key_file)
    with _rotation_lock(files) as locked:
        if not locked:
            raise MasterKeyRotationFailed(
                f"cannot create {files.lock}: rotation writes beside the master key file, so "
                "its directory must be writable"
            )
        if files.next.exists():
            _settle_locked(files, location, argon2)
        if files.previous.exists():
            raise MasterKeyExists(
                f"{files.previous} is left from an earlier rotation; move it somewhere safe "
                "(it opens backups made before that rotation) or delete it, then rotate again"
            )
        store = location.open(read_master_key(files.current), argon2)
        try:
            write_master_key(files.next, MasterKey.generate())
            resealed = store.reseal_master_shares(read_master_key(files.next))
        finally:
            store.close()
            # Whether or not the transaction committed, the keystore says which key it needs.
            _settle_locked(files, location, argon2)
    return RotationResult(resealed_keys=resealed, retired_master_key_file=files.previous)
