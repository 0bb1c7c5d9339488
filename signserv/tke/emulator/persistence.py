"""The emulator's state file: one JSON document, locked while used, replaced atomically.

Each request runs as lock → read → handle → write-if-changed → unlock, so two processes never
interleave their read-modify-write, and a crash leaves the old or the new file, never a mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from foundation import write_private_file
from signserv.tke.emulator.state import InstanceState
from signserv.tke.emulator.state_document import instance_from_document, instance_to_document
from signserv.tke.errors import EmulatorStateError

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def _serialize(instance: InstanceState) -> str:
    return json.dumps(instance_to_document(instance), indent=2, sort_keys=True) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    write_private_file(path, text.encode("utf-8"), replace=True)


class StateFile:
    """The JSON file holding one emulated service instance; created on first use."""

    def __init__(self, path: Path, create_instance: Callable[[], InstanceState]) -> None:
        self.path = path
        self._create_instance = create_instance
        self._lock_path = path.with_name(path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
            descriptor = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise EmulatorStateError(
                f"{self.path}: cannot open the lock file: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _read(self) -> tuple[InstanceState, str | None]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self._create_instance(), None
        except OSError as exc:
            raise EmulatorStateError(f"{self.path}: cannot read: {exc.strerror}") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise EmulatorStateError(f"{self.path}: not JSON") from None
        return instance_from_document(document, source=str(self.path)), text

    @contextlib.contextmanager
    def transaction(self) -> Iterator[InstanceState]:
        """Yield the instance under an exclusive lock; write it back only if it changed.

        An exception inside the block discards every change: nothing is written.
        """
        with self._locked():
            instance, original = self._read()
            yield instance
            updated = _serialize(instance)
            if updated != original:
                try:
                    _write_atomically(self.path, updated)
                except OSError as exc:
                    raise EmulatorStateError(f"{self.path}: cannot write: {exc.strerror}") from None
