"""The storage seams of the keystore: what a backend stores, and the interfaces it implements.

A backend (today :mod:`keystore.sqlite`; a database shared by replicas next) implements
:class:`KeyRecordStore` and :class:`FailureCounterStore`; an audit chain backend implements
:class:`AuditChainStore`. Backends store and count only: sealing stays in :mod:`keystore.crypto`
and :class:`keystore.store.KeyStore`, lock policy stays with the service. Every value here is
either public or still sealed; nothing a backend sees opens without the master key and a token.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from foundation.argon2id import Argon2Parameters
from keystore.crypto import SealedKey

ANY_ADDRESS = "*"

SOFTWARE_KIND = "software"
"""The kind of a key whose private key is sealed in its record and signs in this process.

Every record names its kind: where its private key lives, and so what turns the record into a
signing key. Records written before kinds existed are software keys.
"""

PKCS11_KIND = "pkcs11"
"""The kind of a key generated in a PKCS#11 HSM, whose record seals only an HSM-wrapped blob."""


@dataclass(frozen=True)
class KeyInfo:
    """What anyone on the host may know about a key: no secret, no private material."""

    name: str
    public_point: bytes
    enabled: bool
    created_at: str
    last_used_at: str | None
    generation: int
    kind: str


@dataclass(frozen=True)
class KeyStatus:
    """What a request checks on every call: is the key enabled, has its record changed."""

    enabled: bool
    generation: int
    record_id: bytes
    token_salt: bytes
    """The salt of the record's token seal: random, and new with every token rotation."""
    master_key_check: bytes = b""
    """The keystore's master-key check, read with the status: a request then sees a master-key
    rotation committed by another replica without a second read."""

    @property
    def version(self) -> str:
        """Changes with every change of the record, and differs for a re-created name.

        The generation alone can repeat: a restored backup brings an older generation back, and
        the next token rotation then reaches a number a worker may have cached for another
        token. The token seal's salt never repeats, so neither does the version.
        """
        return f"{self.record_id.hex()}:{self.generation}:{self.token_salt.hex()}"


@dataclass(frozen=True)
class SealedRecord:
    """One stored key as the envelope needs it: sealed material, status and public point."""

    sealed: SealedKey
    status: KeyStatus
    public_point: bytes
    kind: str


@dataclass(frozen=True)
class NewKeyRecord:
    """A record to insert: a new name, enabled, generation 1."""

    name: str
    public_point: bytes
    created_at: str
    sealed: SealedKey
    kind: str


@dataclass(frozen=True)
class MasterSeals:
    """Everything sealed under the master key: its check, each key's record, each server secret.

    Read with :meth:`KeyRecordStore.master_seals`, re-sealed by the envelope, and written back
    with :meth:`KeyRecordStore.replace_master_seals` only if nothing changed in between.
    """

    master_key_check: bytes
    keys: Mapping[str, SealedKey]
    server_secrets: Mapping[str, bytes]


@dataclass(frozen=True)
class StoredKey:
    """One key's whole record, still sealed: what moves between backends and into backups."""

    info: KeyInfo
    sealed: SealedKey


@dataclass(frozen=True)
class KeystoreSnapshot:
    """Everything a keystore holds, still sealed; opens only with its master key and tokens."""

    master_key_check: bytes
    keys: tuple[StoredKey, ...]
    server_secrets: Mapping[str, bytes]


class KeyRecordStore(Protocol):
    """Sealed key records and server-wide values; every write is atomic on its own."""

    location: str
    """Where the records live, for messages (a path, a database name; never a credential)."""

    def check_ready(self) -> None:
        """Raise a :class:`keystore.KeystoreUnavailable` unless the storage is intact and usable."""

    def close(self) -> None:
        """Release this thread's resources (a connection); the store stays usable."""

    def list_keys(self) -> list[KeyInfo]:
        """Every key's public information, by name."""

    def count_keys(self) -> int:
        """How many keys are stored."""

    def info(self, name: str) -> KeyInfo | None:
        """One key's public information, or None."""

    def status(self, name: str) -> KeyStatus | None:
        """One key's enabled flag and version, or None (the per-request read: keep it cheap)."""

    def sealed(self, name: str) -> SealedRecord | None:
        """One key's sealed record, or None."""

    def kdf_costs(self) -> set[Argon2Parameters]:
        """Every distinct argon2id cost the stored keys carry (empty when there are none)."""

    def master_key_check(self) -> bytes:
        """The stored seal that proves which master key opens this storage."""

    def insert_key(self, record: NewKeyRecord, expected_master_key_check: bytes) -> None:
        """Insert ``record`` if its name is free and the master-key check is still the one given.

        Raises :class:`keystore.KeyExists`, or :class:`keystore.errors.RecordsChanged` when a
        master-key rotation committed since the caller sealed ``record``.
        """

    def set_enabled(self, name: str, enabled: bool) -> bool:
        """Set the flag and bump the generation; False when there is no such key."""

    def delete_key(self, name: str) -> bool:
        """Delete the record; False when there is no such key."""

    def replace_token_seal(self, name: str, generation: int, resealed: SealedKey) -> bool:
        """Store ``resealed``'s token share and bump the generation, if still at ``generation``."""

    def replace_policy(
        self,
        name: str,
        generation: int,
        resealed: SealedKey,
        expected_master_key_check: bytes,
    ) -> bool:
        """Store ``resealed``'s master share and policy together and bump the generation.

        Only if the record is still ``resealed.record_id`` at ``generation`` (False otherwise);
        raises :class:`keystore.errors.RecordsChanged` when the master-key check is no longer
        ``expected_master_key_check`` (a rotation committed since the caller re-sealed).
        """

    def record_use(self, name: str, used_at: str, not_since: str) -> None:
        """Stamp ``last_used_at = used_at`` unless it is already newer than ``not_since``."""

    def server_secret(self, purpose: str, candidate: bytes) -> bytes:
        """The sealed secret stored for ``purpose``, storing ``candidate`` first if there is none."""

    def master_seals(self) -> MasterSeals:
        """A consistent read of everything sealed under the master key."""

    def replace_master_seals(self, read: MasterSeals, resealed: MasterSeals) -> None:
        """Write ``resealed`` in one transaction if the stored seals still match ``read``.

        Raises :class:`keystore.errors.RecordsChanged` when a key or secret was added, removed
        or re-created, or the master-key check changed, since ``read``; nothing is written then.
        """

    def snapshot(self) -> KeystoreSnapshot:
        """A consistent copy of every record and server secret, still sealed."""

    def load_snapshot(self, snapshot: KeystoreSnapshot, *, replace: bool) -> None:
        """Make the stored records exactly ``snapshot``, in one transaction.

        Raises :class:`keystore.KeystoreExists` when keys are stored and ``replace`` is False.
        """


@dataclass(frozen=True)
class FailureCount:
    """Consecutive failures of one (key, address) pair, or of a key from anywhere."""

    failures: int
    last_failure: float


@dataclass(frozen=True)
class FailureState:
    """The two counters a cold-path request consults."""

    pair: FailureCount | None
    key: FailureCount | None


@dataclass(frozen=True)
class LockSchedule:
    """When a count locks: from ``threshold`` failures on, for 1, 2, 4 … s after its last failure.

    The service chooses the numbers; a backend applies them inside
    :meth:`FailureCounterStore.reserve_attempt`, so that checking a lock and counting an attempt
    are one atomic step.
    """

    threshold: int
    max_seconds: int

    def lock_seconds(self, failures: int) -> float:
        """How long ``failures`` lock: 0 below the threshold, then doubling, at most the bound."""
        if failures < self.threshold:
            return 0.0
        return float(min(2 ** min(failures - self.threshold, 32), self.max_seconds))

    def locked_until(self, count: FailureCount) -> float:
        """When the lock ``count`` earns ends; 0.0 when it earns none."""
        seconds = self.lock_seconds(count.failures)
        return count.last_failure + seconds if seconds else 0.0


@dataclass(frozen=True)
class AttemptRules:
    """What :meth:`FailureCounterStore.reserve_attempt` checks before it counts an attempt.

    A count whose last failure is older than ``window_seconds`` is forgotten. The pair's own
    count locks the pair; the key-wide count locks only addresses whose pair count is not
    forgotten, so an address that never failed (the owner's) is never locked by others.
    """

    pair: LockSchedule
    key: LockSchedule
    window_seconds: float

    def live(self, count: FailureCount | None, now: float) -> FailureCount | None:
        """``count`` unless it is forgotten (its last failure is older than the window)."""
        if count is None or count.last_failure < now - self.window_seconds:
            return None
        return count

    def locked_until(self, state: FailureState, now: float) -> float:
        """When the lock on ``state`` ends (in the past, or 0.0 when no count earns a lock)."""
        pair = self.live(state.pair, now)
        if pair is None:
            return 0.0
        key = self.live(state.key, now)
        key_end = 0.0 if key is None else self.key.locked_until(key)
        return max(self.pair.locked_until(pair), key_end)


@dataclass(frozen=True)
class Reservation:
    """The answer of :meth:`FailureCounterStore.reserve_attempt`."""

    granted: bool
    locked_until: float
    """When refused: when the lock that refused the attempt ends; 0.0 when granted."""


class FailureCounterStore(Protocol):
    """Failed-authentication counters shared by every worker.

    One counter per (key name, client address) and one per key (address :data:`ANY_ADDRESS`).
    Counters exist for unknown names too, so their behaviour does not reveal which keys exist.
    An attempt is counted as a failure *before* the token is checked and taken back when it
    proves right, so concurrent requests never check more tokens than the schedule allows.
    """

    def state(self, key_name: str, address: str) -> FailureState:
        """The pair's and the key's stored counters (None where nothing is stored)."""

    def reserve_attempt(
        self, key_name: str, address: str, now: float, rules: AttemptRules
    ) -> Reservation:
        """In one atomic step: refuse while the stored state is locked at ``now`` (see
        :meth:`AttemptRules.locked_until`); otherwise count one failure at ``now`` for the pair
        and the key (a forgotten count restarts at 1) and grant the attempt.

        In SQL: one transaction that reads both rows for update, then upserts both.
        """

    def release_attempt(self, key_name: str, address: str) -> None:
        """The granted attempt proved its token: forget the pair's failures and take the
        attempt back from the key-wide count."""

    def forget_older_than(self, cutoff: float) -> int:
        """Drop counters whose last failure is older than ``cutoff``; returns how many."""


@dataclass(frozen=True)
class ChainHead:
    """Where an audit chain ends: how many records it holds, and the hash of the last one.

    ``head`` is what the next record's ``prev`` holds (64 zeros for an empty chain).
    """

    records: int
    head: str


@dataclass(frozen=True)
class VerifiedChain(ChainHead):
    """An audit chain whose every record checked out."""


class AuditChainStore(Protocol):
    """An append-only chain of MAC'd records shared by every worker."""

    def append(self, entry: Mapping[str, object]) -> None:
        """Chain ``entry`` after the last record and make it durable, or raise
        :class:`keystore.errors.AuditWriteError` (the caller fails closed)."""

    def check_writable(self) -> None:
        """Raise :class:`keystore.errors.AuditWriteError` unless an append would land now
        (storage reachable, the chain this writer knows still intact, room left); writes nothing."""

    def records(self) -> Iterator[bytes]:
        """The stored records, oldest first, in their stored encoding."""

    def head(self) -> ChainHead:
        """The record count and the last record's hash, reading only that record (its MAC
        checked, not the whole chain): cheap enough to sign a checkpoint every few seconds."""

    def verify(self) -> VerifiedChain:
        """Check every record; raise :class:`keystore.errors.AuditChainBroken` at the first fault."""
