"""Taking signed checkpoints of the audit chain and shipping them to the configured sinks.

The checkpoint key is an Ed25519 key whose seed is the server secret
:data:`~signserv.host.audit_log.AUDIT_CHECKPOINT_PURPOSE`, sealed under the master key like the
audit MAC key (so it moves with master-key rotation, backups and restores). The service takes a
checkpoint every ``audit_checkpoints.interval_seconds`` and once more on shutdown, from a thread
of gunicorn's arbiter, never in a request (:class:`PeriodicCheckpoints`). Format:
:mod:`keystore.audit_checkpoint`; what they prove: docs/audit-checkpoints.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from keystore import KeyStore
from keystore.audit_checkpoint import (
    TIME_EXTENSION,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
    public_key_fingerprint,
    split_notes,
)
from keystore.checkpointed_chain import CheckpointsMatched, match_checkpoints
from keystore.errors import AuditError, CheckpointSignatureInvalid, CheckpointUnreadable
from keystore.file_audit_chain import chain_heads
from keystore.records import AuditChainStore
from signserv.host.audit_log import AUDIT_CHECKPOINT_PURPOSE, AUDIT_MAC_PURPOSE
from signserv.host.checkpoint_sinks import CheckpointSink, CheckpointSinkError, configured_sinks
from signserv.host.config import Settings
from signserv.host.home import open_audit_chain, open_keystore

_logger = logging.getLogger(__name__)

DEFAULT_ORIGIN_PREFIX = "signserv-audit/"


def checkpoint_signer(settings: Settings, store: KeyStore) -> CheckpointSigner:
    """The checkpoint key of ``store``'s keystore (made on first use), named by the origin."""
    seed = store.server_secret(AUDIT_CHECKPOINT_PURPOSE)
    origin = settings.audit_checkpoints.origin or (
        DEFAULT_ORIGIN_PREFIX + public_key_fingerprint(seed)
    )
    return CheckpointSigner(origin, seed)


class CheckpointWriter:
    """Signs the chain's current head and sends the note to every sink."""

    def __init__(
        self, signer: CheckpointSigner, chain: AuditChainStore, sinks: Sequence[CheckpointSink]
    ) -> None:
        self._signer = signer
        self._chain = chain
        self.sinks = tuple(sinks)
        self._last_records = 0

    def take(self) -> str:
        """A signed checkpoint of the chain as it ends now."""
        head = self._chain.head()
        if head.records < self._last_records:
            _logger.error(
                "the audit chain holds %d records, fewer than the %d of this process's last "
                "checkpoint: run `signserv audit verify --checkpoints`",
                head.records,
                self._last_records,
            )
        self._last_records = head.records
        now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        checkpoint = Checkpoint(
            self._signer.verifier.name, head.records, head.head, (TIME_EXTENSION + now,)
        )
        return self._signer.sign(checkpoint)

    def write(self) -> str:
        """Take a checkpoint and send it to every sink; a sink that fails is logged, not raised."""
        note = self.take()
        self.deliver(note)
        return note

    def deliver(self, note: str) -> list[CheckpointSinkError]:
        """Send ``note`` to every sink; returns (and logs) the failures, the others still sent."""
        failures: list[CheckpointSinkError] = []
        for sink in self.sinks:
            try:
                sink.send(note)
            except CheckpointSinkError as exc:
                _logger.warning("audit checkpoint not delivered (retried next interval): %s", exc)
                failures.append(exc)
        return failures


def checkpoint_writer(settings: Settings, store: KeyStore) -> CheckpointWriter:
    """A writer over the configured chain and sinks, with ``store``'s checkpoint and MAC keys."""
    return CheckpointWriter(
        checkpoint_signer(settings, store),
        open_audit_chain(settings, store.server_secret(AUDIT_MAC_PURPOSE)),
        configured_sinks(settings.audit_checkpoints),
    )


def open_checkpoint_writer(settings: Settings) -> CheckpointWriter:
    """:func:`checkpoint_writer` over the configured keystore, opened for the two keys only."""
    store = open_keystore(settings)
    try:
        return checkpoint_writer(settings, store)
    finally:
        store.close()


def read_checkpoints(path: Path, verifier: CheckpointVerifier) -> list[Checkpoint]:
    """Every checkpoint in the file ``path`` (notes one after another), each signature checked.

    A note that is garbled or not signed by ``verifier`` raises its error, prefixed with the
    file and the note's position in it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditError(f"cannot read the checkpoints {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CheckpointUnreadable(f"{path}: not UTF-8 text, so not checkpoints") from None
    checkpoints: list[Checkpoint] = []
    try:
        for note in split_notes(text):
            checkpoints.append(verifier.open(note))
    except (CheckpointUnreadable, CheckpointSignatureInvalid) as exc:
        raise type(exc)(f"{path}, checkpoint {len(checkpoints) + 1}: {exc}") from None
    return checkpoints


def verify_against_checkpoints(
    records: Iterable[bytes], mac_key: bytes | None, checkpoints: Sequence[Checkpoint]
) -> CheckpointsMatched:
    """Check the chain's links (and MACs, given ``mac_key``), then hold it to ``checkpoints``.

    Raises :class:`keystore.errors.AuditChainBroken`, :class:`AuditChainTruncated` or
    :class:`AuditChainDiverged`, naming what was found.
    """
    return match_checkpoints(chain_heads(records, mac_key), checkpoints)


class PeriodicCheckpoints:
    """A daemon thread writing a checkpoint every ``interval`` seconds; :meth:`stop` writes a last one."""

    def __init__(self, writer: CheckpointWriter, interval: float) -> None:
        self._writer = writer
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="signserv-audit-checkpoints", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the thread and write the shutdown checkpoint (after the workers have stopped)."""
        self._stopping.set()
        if self._thread.ident is not None:  # gunicorn may exit before it was ever ready
            self._thread.join(timeout=self._interval + 60)
        self._write_logging_failures()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self._write_logging_failures()

    def _write_logging_failures(self) -> None:
        try:
            self._writer.write()
        except Exception:  # the thread must outlive any failure: the next interval retries
            _logger.exception("could not take an audit checkpoint; retrying next interval")
