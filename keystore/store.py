"""The keystore: sealed P-521 keys by name, over any :class:`keystore.records.KeyRecordStore`.

DESIGN §3. This class is the envelope's user, not a database: it seals and unseals with
:mod:`keystore.crypto`, follows a master-key rotation made by another process, and makes an
unknown name cost what a wrong token costs. Where the records live is the backend's business
(:mod:`keystore.sqlite` today). The master key is checked against the stored seal on open, so a
wrong master key is refused before any request is served.

A key's signing policy is opaque bytes here, bound into its master-share seal
(:mod:`keystore.crypto`): :meth:`KeyStore.set_policy` binds one with the master key,
:meth:`KeyStore.unlock` and :meth:`KeyStore.policy` return it only once that seal opened, so a
policy altered in the storage fails like a damaged record. The service gives the bytes meaning.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from foundation.argon2id import Argon2Parameters
from keystore import crypto
from keystore.errors import (
    KeyBackendUnavailable,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeystoreCorrupt,
    KeystoreError,
    MasterKeyMismatch,
    MasterShareMismatch,
    RecordsChanged,
)
from keystore.records import (
    SOFTWARE_KIND,
    KeyInfo,
    KeyRecordStore,
    KeyStatus,
    MasterSeals,
    NewKeyRecord,
    SealedRecord,
)
from keystore.signing_key import (
    HeldKey,
    KeyBackend,
    SigningKey,
    SoftwareSigningKey,
    uncompressed_point,
)
from keystore.validation import require_key_name, require_token

# A concurrent master-key rotation or key creation makes a write start over; more than this
# many in a row means something keeps changing the records, which the caller should hear.
_ATTEMPTS = 3


@dataclass(frozen=True)
class UnlockedKey:
    """A key unlocked with its token, and the record version it came from."""

    name: str
    signing_key: SigningKey
    generation: int
    version: str
    policy: bytes | None = None
    """The key's signing policy, proven genuine by the unseal (None: the key has none)."""

    def __repr__(self) -> str:
        return f"UnlockedKey(name={self.name!r}, version={self.version})"


_Unsealed = TypeVar("_Unsealed")

# Signed once on every cold unlock and checked against the record's public point: a record
# whose sealed key and public key disagree is refused before it signs anything.
_KEY_CHECK_DIGEST = hashlib.sha512(b"signserv: does this private key match its record").digest()


def _require_matching_public_key(name: str, signing_key: SigningKey, public_point: bytes) -> None:
    mismatch = KeystoreCorrupt(f"the public key stored for {name!r} does not match its private key")
    if signing_key.public_point != public_point:
        raise mismatch
    try:
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), public_point)
        public_key.verify(
            signing_key.sign_digest(_KEY_CHECK_DIGEST),
            _KEY_CHECK_DIGEST,
            ec.ECDSA(Prehashed(hashes.SHA512())),
        )
    except (ValueError, InvalidSignature):
        raise mismatch from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class KeyStore:
    """Sealed P-521 keys by name, stored in ``records``; open one with :meth:`open`."""

    def __init__(
        self,
        records: KeyRecordStore,
        master_key: crypto.MasterKey,
        argon2: crypto.Argon2Runner,
        reload_master_key: Callable[[], crypto.MasterKey] | None = None,
        key_backends: Sequence[KeyBackend] = (),
    ) -> None:
        self.records = records
        self._master_key = master_key
        self._argon2 = argon2
        self._reload_master_key = reload_master_key
        self._key_backends = {backend.kind: backend for backend in key_backends}
        # The stored master-key check last proven to open with self._master_key: while the
        # stored one equals it, a request needs no cryptography to know the key is current.
        self._proven_check = b""

    # --- opening -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        records: KeyRecordStore,
        master_key: crypto.MasterKey,
        argon2: crypto.Argon2Runner,
        reload_master_key: Callable[[], crypto.MasterKey] | None = None,
        key_backends: Sequence[KeyBackend] = (),
    ) -> KeyStore:
        """A keystore over ``records``, refusing damaged storage or a master key not its own.

        ``reload_master_key`` re-reads the master key file: a long-running process then follows
        a master-key rotation made by another process (see :meth:`_adopt_rotated_master_key`).
        ``key_backends`` serve the records of other kinds than software (an HSM); they are not
        reached on open, so the keystore opens while an HSM is away (its keys then fail closed).
        """
        store = cls(records, master_key, argon2, reload_master_key, key_backends)
        try:
            store._check_records()
        except KeystoreError:
            store.close()
            raise
        return store

    def check_ready(self) -> None:
        """Raise unless the storage is intact, this master key opens it and every HSM answers."""
        self._check_records()
        for backend in self._key_backends.values():
            backend.check_ready()

    def _check_records(self) -> None:
        self.records.check_ready()
        self._require_current_master_key(self.records.master_key_check())

    def _require_current_master_key(self, check: bytes) -> None:
        """Raise :class:`MasterKeyMismatch` unless this process holds (or, from the master key
        file, adopts) the master key that ``check``, the stored master-key check, was made with."""
        if check and check == self._proven_check:
            return
        if crypto.matches_master_key_check(
            self._master_key, check
        ) or self._adopt_rotated_master_key(check):
            self._proven_check = check
            return
        raise MasterKeyMismatch(
            f"the master key does not open the keystore {self.records.location}: this process "
            "holds a master key that the keystore is no longer (or never was) sealed under, "
            "such as one retired by `signserv master-key rotate` on another host; install the "
            "keystore's current master key file here (a running service reads it again on its "
            "next request)"
        )

    def _adopt_rotated_master_key(self, check: bytes | None = None) -> bool:
        """Take the master key file's current key if it opens this keystore; True if taken.

        After `signserv master-key rotate` in another process, the records are sealed under a
        new key that this process does not hold yet; only a key that passes the stored
        master-key check is ever adopted.
        """
        if self._reload_master_key is None:
            return False
        try:
            candidate = self._reload_master_key()
        except KeystoreError:
            return False
        if check is None:
            check = self.records.master_key_check()
        if not crypto.matches_master_key_check(candidate, check):
            return False
        self._master_key = candidate
        return True

    def close(self) -> None:
        """Release this thread's hold on the storage."""
        self.records.close()

    # --- reading -----------------------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        """Every key's public information, by name."""
        return self.records.list_keys()

    def count_keys(self) -> int:
        """How many keys are stored."""
        return self.records.count_keys()

    def info(self, name: str) -> KeyInfo:
        """One key's public information."""
        found = self.records.info(require_key_name(name))
        if found is None:
            raise KeyNotFound(f"no key named {name!r}")
        return found

    def status(self, name: str) -> KeyStatus | None:
        """Enabled flag and generation of ``name``, or None when there is no such key.

        Raises :class:`MasterKeyMismatch` once the keystore is sealed under a master key this
        process neither holds nor finds in its master key file: the per-request read then
        stops a replica left with a retired key from using keys it unlocked before.
        """
        found = self.records.status(name)
        if found is not None:
            self._require_current_master_key(found.master_key_check)
        return found

    # --- unlocking ---------------------------------------------------------------------------

    def unlock(self, name: str, token: str) -> UnlockedKey:
        """The signing key of ``name`` if ``token`` is its token and the key is enabled.

        Every answer costs one argon2id run at each cost the stored keys carry (one run when
        they share a cost, as they do unless the configured cost changed): the key's own run
        is real, the others are spent on nothing, so timing tells neither an unknown name from
        a known one nor one key's cost from another's. A disabled key is reported only after
        its token was proven.
        """
        found = self.records.sealed(name)
        self._spend_every_other_cost(token, None if found is None else found.sealed.kdf)
        if found is None:
            raise KeyNotFound(f"no key named {name!r}")
        if not found.status.enabled:
            crypto.verify_token(name, found.sealed, token, self._argon2)
            raise KeyDisabled(f"key {name!r} is disabled")
        signing_key = self._unsealed_signing_key(name, found, token)
        _require_matching_public_key(name, signing_key, found.public_point)
        return UnlockedKey(
            name=name,
            signing_key=signing_key,
            generation=found.status.generation,
            version=found.status.version,
            policy=found.sealed.policy,
        )

    def _unsealed_signing_key(self, name: str, found: SealedRecord, token: str) -> SigningKey:
        """Open ``found`` with ``token``: a software key, or a wrapped key its backend unwraps."""
        if found.kind == SOFTWARE_KIND:
            return SoftwareSigningKey(
                self._with_current_master_key(
                    name,
                    found.sealed,
                    lambda sealed: crypto.unseal_private_key(
                        name, sealed, token, self._master_key, self._argon2
                    ),
                )
            )
        backend = self._key_backends.get(found.kind)
        if backend is None:
            crypto.verify_token(name, found.sealed, token, self._argon2)
            raise KeyBackendUnavailable(
                f"key {name!r} is a {found.kind!r} key, and no {found.kind} backend is "
                "configured here"
            )
        wrapped_key = self._with_current_master_key(
            name,
            found.sealed,
            lambda sealed: crypto.unseal_hsm_wrapped_key(
                name, sealed, token, self._master_key, self._argon2
            ),
        )
        return backend.signing_key(found.sealed.record_id, wrapped_key, found.public_point)

    def _with_current_master_key(
        self, name: str, sealed: crypto.SealedKey, unseal: Callable[[crypto.SealedKey], _Unsealed]
    ) -> _Unsealed:
        """``unseal(sealed)`` under the master key the records are sealed with now.

        A key rotated by another process is adopted before unsealing (one read, no argon2id),
        so the first cold unlock after a rotation runs argon2id once. The retry covers a
        rotation that commits while this request runs: ``sealed`` may have been read before
        the commit and the master key after it (here, or by another thread adopting it), or
        the other way round; the record is read again and opened with the key of that moment.
        """
        self._require_current_master_key(self.records.master_key_check())
        try:
            return unseal(sealed)
        except MasterShareMismatch:
            key_tried = self._master_key
            self._require_current_master_key(self.records.master_key_check())
            again = self.records.sealed(name)
            if again is None:
                raise KeyNotFound(f"no key named {name!r}") from None
            if again.sealed == sealed and self._master_key is key_tried:
                raise  # neither the record nor the key changed: it does not open
            return unseal(again.sealed)

    def _spend_every_other_cost(self, token: str, own: Argon2Parameters | None) -> None:
        """Run argon2id once at each stored cost but ``own`` (the key's, None for no key).

        With no keys stored, an unknown name costs the configured cost a new key would carry.
        """
        costs = self.records.kdf_costs() or {self._argon2.parameters}
        for cost in costs - {own}:
            self._argon2.spend_like_a_lookup(token, cost)

    # --- writing -----------------------------------------------------------------------------

    def create_key(self, name: str, token: str, kind: str = SOFTWARE_KIND) -> KeyInfo:
        """Generate a new P-521 key under ``name`` where ``kind`` says, sealed under ``token``."""
        if kind == SOFTWARE_KIND:
            return self.add_key(name, ec.generate_private_key(ec.SECP521R1()), token)
        return self._hold_in_backend(
            name, token, kind, lambda backend, record_id: backend.generate(record_id)
        )

    def add_key(
        self,
        name: str,
        private_key: ec.EllipticCurvePrivateKey,
        token: str,
        kind: str = SOFTWARE_KIND,
    ) -> KeyInfo:
        """Store an existing P-521 private key under a new ``name``; never replaces a key.

        For another kind than software the key goes into that backend (an HSM) and this
        process keeps nothing of it.
        """
        if not isinstance(private_key.curve, ec.SECP521R1):
            raise ValueError("only P-521 keys can be stored (the TKE contract is P-521 only)")
        if kind != SOFTWARE_KIND:
            return self._hold_in_backend(
                name, token, kind, lambda backend, record_id: backend.take(record_id, private_key)
            )
        require_key_name(name)
        require_token(token)
        return self._insert(
            name,
            uncompressed_point(private_key.public_key()),
            SOFTWARE_KIND,
            lambda: crypto.seal_private_key(
                name, private_key, token, self._master_key, self._argon2
            ),
        )

    def _hold_in_backend(
        self,
        name: str,
        token: str,
        kind: str,
        hold: Callable[[KeyBackend, bytes], HeldKey],
    ) -> KeyInfo:
        """Have ``kind``'s backend hold a key for a new record of ``name``, and store the record.

        If the record cannot be stored, what the backend made for it is destroyed again.
        """
        require_key_name(name)
        require_token(token)
        backend = self._backend(kind)
        if self.records.info(name) is not None:
            raise KeyExists(f"a key named {name!r} already exists")
        record_id = crypto.new_record_id()
        held = hold(backend, record_id)
        try:
            return self._insert(
                name,
                held.public_point,
                kind,
                lambda: crypto.seal_hsm_wrapped_key(
                    name, record_id, held.wrapped_key, token, self._master_key, self._argon2
                ),
            )
        except BaseException:
            backend.destroy(record_id)
            raise

    def _backend(self, kind: str) -> KeyBackend:
        try:
            return self._key_backends[kind]
        except KeyError:
            raise KeyBackendUnavailable(f"no {kind!r} key backend is configured") from None

    def _insert(
        self, name: str, public_point: bytes, kind: str, seal: Callable[[], crypto.SealedKey]
    ) -> KeyInfo:
        """Store a new record, sealed by ``seal()`` under the master key current at that time."""
        check = self.records.master_key_check()
        for _ in range(_ATTEMPTS):
            # A master-key rotation may have committed since this store was opened (a key import
            # can wait minutes at a password prompt): seal under the new key, never the retired one.
            if not crypto.matches_master_key_check(
                self._master_key, check
            ) and not self._adopt_rotated_master_key(check):
                raise MasterKeyMismatch(
                    f"the master key does not open the keystore {self.records.location}"
                )
            record = NewKeyRecord(
                name=name,
                public_point=public_point,
                created_at=_now(),
                sealed=seal(),
                kind=kind,
            )
            try:
                self.records.insert_key(record, expected_master_key_check=check)
            except RecordsChanged:
                check = self.records.master_key_check()
                continue
            return self.info(name)
        raise RecordsChanged(f"the master key kept changing while {name!r} was stored; try again")

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable a key; a change of state invalidates every worker's cached unlock."""
        if not self.records.set_enabled(require_key_name(name), enabled):
            raise KeyNotFound(f"no key named {name!r}")

    def delete_key(self, name: str) -> None:
        """Delete a key for good; for a key in an HSM, what the HSM holds for it goes first.

        The HSM half is destroyed before the record, so a failure leaves nothing usable behind:
        at worst a record whose key can no longer be unwrapped (delete it again).
        """
        info = self.info(name)
        status = self.records.status(name)
        if info.kind != SOFTWARE_KIND and status is not None:
            self._backend(info.kind).destroy(status.record_id)
        if not self.records.delete_key(name):
            raise KeyNotFound(f"no key named {name!r}")

    def location(self, info: KeyInfo) -> str:
        """Where the private key of ``info`` lives, for people."""
        if info.kind == SOFTWARE_KIND:
            return f"software, sealed in {self.records.location}"
        backend = self._key_backends.get(info.kind)
        return backend.location if backend else f"{info.kind} (not configured here)"

    def rotate_token(self, name: str, old_token: str, new_token: str) -> None:
        """Replace a key's token; proves ``old_token`` first, never touches the master key."""
        require_token(new_token)
        found = self._sealed_record(name)
        resealed = crypto.reseal_for_new_token(
            name, found.sealed, old_token, new_token, self._argon2
        )
        if not self.records.replace_token_seal(name, found.status.generation, resealed):
            raise KeystoreError(f"key {name!r} changed while its token was rotated; try again")

    def policy(self, name: str) -> bytes | None:
        """``name``'s signing policy, proven genuine with the master key (None: it has none).

        Raises :class:`MasterShareMismatch` when the stored policy, or its absence, was not
        sealed with the master key: the record was altered.
        """
        found = self._sealed_record(name)
        return self._with_current_master_key(
            name, found.sealed, lambda sealed: crypto.verify_policy(name, sealed, self._master_key)
        )

    def set_policy(self, name: str, policy: bytes | None) -> None:
        """Bind ``policy`` (None: remove it) to ``name``'s record under the master key.

        The master share is re-sealed with the policy in its associated data; the generation
        moves on, so every worker drops its unlocked copy and reads the new policy at once.
        """
        for _ in range(_ATTEMPTS):
            try:
                if self._replace_policy_once(name, policy):
                    return
            except RecordsChanged:
                continue
        raise RecordsChanged(f"key {name!r} kept changing while its policy was set; try again")

    def _replace_policy_once(self, name: str, policy: bytes | None) -> bool:
        """One attempt of :meth:`set_policy`; False when the record changed meanwhile."""
        # The check first: a rotation committing after it makes the write start over.
        check = self.records.master_key_check()
        found = self._sealed_record(name)
        resealed = self._with_current_master_key(
            name,
            found.sealed,
            lambda sealed: crypto.reseal_for_new_policy(name, sealed, policy, self._master_key),
        )
        return self.records.replace_policy(
            name, found.status.generation, resealed, expected_master_key_check=check
        )

    def _sealed_record(self, name: str) -> SealedRecord:
        found = self.records.sealed(require_key_name(name))
        if found is None:
            raise KeyNotFound(f"no key named {name!r}")
        return found

    def record_use(self, name: str, not_since: str) -> None:
        """Stamp ``last_used_at`` now unless it is already newer than ``not_since`` (ISO time)."""
        self.records.record_use(name, _now(), not_since)

    # --- server-wide secrets ----------------------------------------------------------------

    def server_secret(self, purpose: str) -> bytes:
        """A random 32-byte secret for ``purpose`` (e.g. the audit MAC key), made on first use.

        Stored sealed under the master key, so it survives restarts and master-key rotation,
        and is shared by every worker.
        """
        candidate = crypto.seal_server_secret(self._master_key, purpose, os.urandom(32))
        sealed = self.records.server_secret(purpose, candidate)
        return crypto.open_server_secret(self._master_key, purpose, sealed)

    # --- master-key rotation -----------------------------------------------------------------

    def reseal_master_shares(self, new_master_key: crypto.MasterKey) -> int:
        """Re-seal master shares, server secrets and the master-key check under ``new_master_key``.

        One write: after a crash the keystore opens with the old master key or with the new
        one, never with a mix. Generations stay: the private keys themselves do not change, so
        every worker's unlocked keys remain right. Returns the number of keys re-sealed.
        """
        for _ in range(_ATTEMPTS):
            read = self.records.master_seals()
            try:
                self.records.replace_master_seals(read, self._resealed(read, new_master_key))
            except RecordsChanged:
                continue
            self._master_key = new_master_key
            return len(read.keys)
        raise RecordsChanged("keys kept changing during the master-key rotation; try again")

    def _resealed(self, read: MasterSeals, new_master_key: crypto.MasterKey) -> MasterSeals:
        return MasterSeals(
            master_key_check=crypto.master_key_check(new_master_key),
            keys={
                name: crypto.reseal_for_new_master_key(
                    name, sealed, self._master_key, new_master_key
                )
                for name, sealed in read.keys.items()
            },
            server_secrets={
                purpose: crypto.reseal_server_secret(
                    purpose, sealed, self._master_key, new_master_key
                )
                for purpose, sealed in read.server_secrets.items()
            },
        )
