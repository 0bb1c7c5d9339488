"""Keys in a real SoftHSM2 token: generated inside it, never extractable, still gated by the token."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from pkcs11 import Attribute, ObjectClass

from keystore import (
    PKCS11_KIND,
    SOFTWARE_KIND,
    KeyBackendUnavailable,
    KeyStore,
    MasterKey,
    MasterShareMismatch,
    SigningKeyLost,
    TokenRejected,
    WrappingKeyMissing,
)
from keystore.pkcs11 import Pkcs11KeyBackend, TokenConnection, TokenSelector, UserPinSource
from keystore.pkcs11.backend import WRAPPING_KEY_LABEL
from keystore.pkcs11.token import MODULE_CALLS
from keystore.sqlite import SqliteDatabase, SqliteKeyRecords, create_sqlite_keystore

from ..softhsm import TOKEN_LABEL, USER_PIN, SoftHsm
from .conftest import OTHER_TOKEN, TOKEN, CountingArgon2

DIGEST = hashlib.sha512(b"a TKE command to sign").digest()


def verify(public_point: bytes, signature: bytes) -> None:
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), public_point).verify(
        signature, DIGEST, ec.ECDSA(Prehashed(hashes.SHA512()))
    )


def hsm_backend(softhsm: SoftHsm, pin: str = USER_PIN) -> Pkcs11KeyBackend:
    return Pkcs11KeyBackend(
        TokenConnection(
            softhsm.module, TokenSelector(label=TOKEN_LABEL), UserPinSource("a test", lambda: pin)
        )
    )


def open_with(store_path: Path, master_key: MasterKey, argon2, *backends) -> KeyStore:
    return KeyStore.open(
        SqliteKeyRecords(SqliteDatabase(store_path)), master_key, argon2, key_backends=backends
    )


@pytest.fixture
def hsm_store(
    softhsm: SoftHsm, store_path: Path, master_key: MasterKey, argon2: CountingArgon2
) -> KeyStore:
    create_sqlite_keystore(store_path, master_key, argon2).close()
    return open_with(store_path, master_key, argon2, hsm_backend(softhsm))


@pytest.fixture
def token_session(softhsm: SoftHsm) -> Iterator[pkcs11.Session]:
    """A separate logged-in look at the token, as an administrator with the PIN would have."""
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=TOKEN_LABEL)
    try:
        session = token.open(user_pin=USER_PIN)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        session = token.open()
    with session:
        yield session


def wrapping_keys(session: pkcs11.Session, record_id: bytes) -> list[pkcs11.Object]:
    return list(
        session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: record_id})
    )


def record_id(store: KeyStore, name: str) -> bytes:
    status = store.status(name)
    assert status is not None
    return status.record_id


def test_an_hsm_key_signs_verifiable_der_and_says_where_it_lives(hsm_store: KeyStore) -> None:
    info = hsm_store.create_key("in-hsm", TOKEN, kind=PKCS11_KIND)
    assert info.kind == PKCS11_KIND
    assert TOKEN_LABEL in hsm_store.location(info)
    signing_key = hsm_store.unlock("in-hsm", TOKEN).signing_key
    for _ in range(20):  # short r or s must still come out as minimal DER INTEGERs
        signature = signing_key.sign_digest(DIGEST)
        verify(info.public_point, signature)
        r, s = decode_dss_signature(signature)
        assert r > 0 and s > 0


def test_the_private_key_in_the_token_is_sensitive_and_not_extractable(
    hsm_store: KeyStore, token_session: pkcs11.Session
) -> None:
    hsm_store.create_key("attrs", TOKEN, kind=PKCS11_KIND)
    signing_key = hsm_store.unlock("attrs", TOKEN).signing_key  # holds its session object
    (wrapping_key,) = wrapping_keys(token_session, record_id(hsm_store, "attrs"))
    assert wrapping_key[Attribute.SENSITIVE] and not wrapping_key[Attribute.EXTRACTABLE]
    assert wrapping_key[Attribute.TOKEN] and not wrapping_key[Attribute.ENCRYPT]
    assert not wrapping_key[Attribute.DECRYPT]
    private_keys = list(token_session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
    assert private_keys, "the unlocked key is a session object in the token"
    for private_key in private_keys:
        assert private_key[Attribute.SENSITIVE] and not private_key[Attribute.EXTRACTABLE]
        assert not private_key[Attribute.TOKEN]
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private_key[Attribute.VALUE]
    del signing_key
    assert list(token_session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})) == []


def test_the_database_and_the_pin_without_the_keys_token_cannot_sign(
    hsm_store: KeyStore, token_session: pkcs11.Session
) -> None:
    """The 2-of-2 property survives: the HSM wraps, but only the key's token opens the blob."""
    hsm_store.create_key("gated", TOKEN, kind=PKCS11_KIND)
    with pytest.raises(TokenRejected):
        hsm_store.unlock("gated", OTHER_TOKEN)
    sealed = hsm_store.records.sealed("gated")
    assert sealed is not None
    # The sealed blob is all the database holds; the wrapping key refuses it as a wrapped key.
    (wrapping_key,) = wrapping_keys(token_session, sealed.sealed.record_id)
    with pytest.raises(pkcs11.exceptions.PKCS11Error):
        wrapping_key.unwrap_key(
            ObjectClass.PRIVATE_KEY,
            pkcs11.KeyType.EC,
            sealed.sealed.private_key,
            mechanism=pkcs11.Mechanism.AES_KEY_WRAP_PAD,
            capabilities=pkcs11.MechanismFlag.SIGN,
            template={
                Attribute.ENCRYPT: pkcs11.DEFAULT,
                Attribute.WRAP: pkcs11.DEFAULT,
                Attribute.VERIFY: pkcs11.DEFAULT,
            },
        )


def test_an_imported_key_keeps_its_public_key_and_the_process_keeps_no_scalar(
    hsm_store: KeyStore,
) -> None:
    private_key = ec.generate_private_key(ec.SECP521R1())
    info = hsm_store.add_key("imported", private_key, TOKEN, kind=PKCS11_KIND)
    expected = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), info.public_point)
    assert expected.public_numbers() == private_key.public_key().public_numbers()
    signing_key = hsm_store.unlock("imported", TOKEN).signing_key
    assert not hasattr(signing_key, "private_key")
    verify(info.public_point, signing_key.sign_digest(DIGEST))


def test_delete_destroys_the_wrapping_key_in_the_token(
    hsm_store: KeyStore, token_session: pkcs11.Session
) -> None:
    hsm_store.create_key("doomed", TOKEN, kind=PKCS11_KIND)
    doomed = record_id(hsm_store, "doomed")
    assert len(wrapping_keys(token_session, doomed)) == 1
    hsm_store.delete_key("doomed")
    assert wrapping_keys(token_session, doomed) == []


def test_token_rotation_and_master_key_rotation_keep_an_hsm_key(hsm_store: KeyStore) -> None:
    info = hsm_store.create_key("rotated", TOKEN, kind=PKCS11_KIND)
    hsm_store.rotate_token("rotated", TOKEN, OTHER_TOKEN)
    hsm_store.reseal_master_shares(MasterKey.generate())
    with pytest.raises(TokenRejected):
        hsm_store.unlock("rotated", TOKEN)
    verify(
        info.public_point, hsm_store.unlock("rotated", OTHER_TOKEN).signing_key.sign_digest(DIGEST)
    )


def test_an_hsm_keys_policy_is_bound_like_a_software_keys(hsm_store: KeyStore) -> None:
    """Set with the master key, carried by rotation, and refused once removed in the database."""
    hsm_store.create_key("bound", TOKEN, kind=PKCS11_KIND)
    policy = b'{"allow":["administrators"],"version":1}'
    hsm_store.set_policy("bound", policy)
    hsm_store.reseal_master_shares(MasterKey.generate())
    assert hsm_store.unlock("bound", TOKEN).policy == policy
    with hsm_store.records._database.transaction() as connection:  # type: ignore[attr-defined]
        connection.execute("UPDATE keys SET policy = NULL WHERE name = 'bound'")
    with pytest.raises(MasterShareMismatch):
        hsm_store.unlock("bound", TOKEN)


def test_both_kinds_side_by_side_under_concurrency(hsm_store: KeyStore) -> None:
    software = hsm_store.create_key("soft", TOKEN)
    hardware = hsm_store.create_key("hard", OTHER_TOKEN, kind=PKCS11_KIND)
    assert {info.name: info.kind for info in hsm_store.list_keys()} == {
        "hard": PKCS11_KIND,
        "soft": SOFTWARE_KIND,
    }
    keys = {
        software.public_point: hsm_store.unlock("soft", TOKEN).signing_key,
        hardware.public_point: hsm_store.unlock("hard", OTHER_TOKEN).signing_key,
    }
    failures: list[BaseException] = []

    def sign_many() -> None:
        try:
            for _ in range(25):
                for point, key in keys.items():
                    verify(point, key.sign_digest(DIGEST))
        except BaseException as exc:  # handed to the main thread
            failures.append(exc)

    threads = [threading.Thread(target=sign_many) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_store_without_the_hsm_configured_fails_closed_on_an_hsm_key(
    hsm_store: KeyStore, store_path: Path, master_key: MasterKey, argon2: CountingArgon2
) -> None:
    hsm_store.create_key("elsewhere", TOKEN, kind=PKCS11_KIND)
    without_hsm = open_with(store_path, master_key, argon2)
    with pytest.raises(KeyBackendUnavailable, match="no pkcs11 backend"):
        without_hsm.unlock("elsewhere", TOKEN)


def test_a_missing_module_or_token_is_a_clear_refusal(
    softhsm: SoftHsm, store_path: Path, master_key: MasterKey, argon2: CountingArgon2
) -> None:
    create_sqlite_keystore(store_path, master_key, argon2).close()
    pin = UserPinSource("a test", lambda: USER_PIN)
    no_module = Pkcs11KeyBackend(
        TokenConnection(Path("/nonexistent/libpkcs11.so"), TokenSelector(label="x"), pin)
    )
    with pytest.raises(KeyBackendUnavailable, match=r"/nonexistent/libpkcs11\.so does not exist"):
        open_with(store_path, master_key, argon2, no_module).check_ready()
    no_token = Pkcs11KeyBackend(
        TokenConnection(softhsm.module, TokenSelector(label="no-such-token"), pin)
    )
    with pytest.raises(KeyBackendUnavailable, match="no token with label 'no-such-token'"):
        open_with(store_path, master_key, argon2, no_token).create_key("k", TOKEN, kind=PKCS11_KIND)


def test_a_removed_token_fails_closed_and_the_store_recovers_when_it_returns(
    hsm_store: KeyStore, softhsm: SoftHsm, tmp_path: Path
) -> None:
    info = hsm_store.create_key("removable", TOKEN, kind=PKCS11_KIND)
    (token_directory,) = softhsm.token_directory.iterdir()
    away = tmp_path / "token-away"
    shutil.move(token_directory, away)
    try:
        with pytest.raises(KeyBackendUnavailable):
            hsm_store.check_ready()
        with pytest.raises(KeyBackendUnavailable):
            hsm_store.unlock("removable", TOKEN)
    finally:
        shutil.move(away, token_directory)
    hsm_store.check_ready()
    verify(info.public_point, hsm_store.unlock("removable", TOKEN).signing_key.sign_digest(DIGEST))


def drop_every_session(softhsm: SoftHsm) -> None:
    """Every session and session object of this process goes, as when an HSM drops its clients."""
    with MODULE_CALLS:
        pkcs11.lib(str(softhsm.module)).reinitialize()


def test_a_lost_session_makes_the_key_go_cold_and_its_token_unwraps_it_again(
    hsm_store: KeyStore, softhsm: SoftHsm
) -> None:
    info = hsm_store.create_key("resilient", TOKEN, kind=PKCS11_KIND)
    signing_key = hsm_store.unlock("resilient", TOKEN).signing_key
    verify(info.public_point, signing_key.sign_digest(DIGEST))
    drop_every_session(softhsm)
    with pytest.raises(SigningKeyLost):
        signing_key.sign_digest(DIGEST)
    # The process kept nothing to unwrap it again with: the token's cold path does it.
    verify(info.public_point, hsm_store.unlock("resilient", TOKEN).signing_key.sign_digest(DIGEST))


def test_an_unlocked_hsm_key_holds_no_wrapped_blob(hsm_store: KeyStore) -> None:
    """A worker keeps only the session object's handle: nothing it could unwrap as extractable."""
    hsm_store.create_key("handle-only", TOKEN, kind=PKCS11_KIND)
    signing_key = hsm_store.unlock("handle-only", TOKEN).signing_key
    held = [*vars(signing_key).values()]
    held += [
        value for holder in held if hasattr(holder, "__dict__") for value in vars(holder).values()
    ]
    assert [value for value in held if isinstance(value, (bytes, bytearray))] == [
        signing_key.public_point
    ]


HSM_KEYS = 3
THREADS = 16
SIGNATURES_PER_THREAD = 10
DROPS = 3


def sign_in_threads(sign_one: Callable[[int], None], *, seconds: float = 120) -> None:
    """``sign_one(thread)`` SIGNATURES_PER_THREAD times in each of THREADS threads; re-raise."""
    failures: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            for _ in range(SIGNATURES_PER_THREAD):
                sign_one(thread)
        except BaseException as exc:  # handed to the main thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), f"not done in {seconds} s"
    assert failures == []


def test_several_hsm_keys_sign_from_16_threads_and_every_signature_verifies(
    hsm_store: KeyStore,
) -> None:
    """python-pkcs11 asks the module for no locking: one process-wide lock keeps it alive."""
    infos = [hsm_store.create_key(f"busy-{n}", TOKEN, kind=PKCS11_KIND) for n in range(HSM_KEYS)]
    keys = [hsm_store.unlock(info.name, TOKEN).signing_key for info in infos]
    signed = itertools.count()

    def sign_with_every_key(thread: int) -> None:
        for info, key in zip(infos, keys, strict=True):
            verify(info.public_point, key.sign_digest(DIGEST))
            next(signed)

    sign_in_threads(sign_with_every_key)
    assert next(signed) == HSM_KEYS * THREADS * SIGNATURES_PER_THREAD


def test_a_reconnection_under_load_costs_cold_unlocks_and_no_wrong_signature(
    hsm_store: KeyStore, softhsm: SoftHsm
) -> None:
    infos = [hsm_store.create_key(f"load-{n}", TOKEN, kind=PKCS11_KIND) for n in range(HSM_KEYS)]
    unlocked = {info.name: hsm_store.unlock(info.name, TOKEN).signing_key for info in infos}
    lost = itertools.count()
    stop_dropping = threading.Event()

    def sign_with_every_key(thread: int) -> None:
        for info in infos:
            for _ in range(2 * DROPS + 1):  # a drop, and the reconnection after it, cost unlocks
                try:
                    signature = unlocked[info.name].sign_digest(DIGEST)
                    break
                except SigningKeyLost:  # what the service does: unlock it again with the token
                    next(lost)
                    # The unlock's own check signature can meet a drop as well.
                    with contextlib.suppress(SigningKeyLost):
                        unlocked[info.name] = hsm_store.unlock(info.name, TOKEN).signing_key
            verify(info.public_point, signature)

    def drop_sessions_a_few_times() -> None:
        for _ in range(DROPS):
            if stop_dropping.wait(0.1):
                return
            drop_every_session(softhsm)

    dropper = threading.Thread(target=drop_sessions_a_few_times)
    dropper.start()
    try:
        sign_in_threads(sign_with_every_key)
    finally:
        stop_dropping.set()
        dropper.join(10)
    assert next(lost) > 0, "no reconnection happened while the threads signed"


def test_a_missing_wrapping_key_is_a_clear_configuration_error_not_a_reconnection(
    hsm_store: KeyStore, token_session: pkcs11.Session
) -> None:
    bystander = hsm_store.create_key("bystander", TOKEN, kind=PKCS11_KIND)
    bystander_key = hsm_store.unlock("bystander", TOKEN).signing_key
    hsm_store.create_key("orphan", TOKEN, kind=PKCS11_KIND)
    orphan_id = record_id(hsm_store, "orphan")
    with MODULE_CALLS, token_session.token.open(rw=True) as administrator:
        for wrapping_key in wrapping_keys(administrator, orphan_id):
            wrapping_key.destroy()  # as an HSM administrator with the PIN might
    with pytest.raises(WrappingKeyMissing) as refused:
        hsm_store.unlock("orphan", TOKEN)
    message = str(refused.value)
    assert WRAPPING_KEY_LABEL in message and orphan_id.hex() in message
    assert "Retrying will not help" in message and TOKEN_LABEL in message
    # No reconnection: the other key's session object is still there and signs.
    verify(bystander.public_point, bystander_key.sign_digest(DIGEST))
