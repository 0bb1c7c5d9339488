"""The envelope that seals private keys at rest: the only module that touches raw key bytes.

DESIGN §3. Each record has a random 32-byte *master share* and *token share*. The master share
is sealed with AES-256-GCM under the server master key; the token share under a key derived
from the record's token with argon2id and a per-record salt. The record's data key is
HKDF-SHA256 of both shares, and the private scalar is sealed under it. Recovering the key
therefore needs the master key AND the token; the master key can be rotated by resealing
master shares alone, and a token by resealing its token share alone. Every seal's associated
data names its purpose, the key name and the record id, so sealed fields cannot be swapped
between records or between roles.

A key may carry a *signing policy*: bytes this module does not read (the service defines them),
stored beside the record and bound into the master share's seal. The seal's associated data
then also names ``policy`` and the policy's SHA-256, so a policy edited, added, removed or
moved to another record without the master key makes the master share fail to open, and the
key fails closed as a damaged record. A record without a policy keeps the associated data it
always had, so records written before policies existed open unchanged; "no policy" and "this
policy" differ in purpose, so neither can pass for the other. Setting a policy re-seals the
master share alone, with the master key and no token.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from foundation.argon2id import Argon2Parameters, UnknownKeyDerivation, derive_key
from keystore.errors import KeystoreCorrupt, MasterKeyInvalid, MasterShareMismatch, TokenRejected

KEY_BYTES = 32
NONCE_BYTES = 12
SALT_BYTES = 16
RECORD_ID_BYTES = 16
P521_SCALAR_BYTES = 66
_FORMAT = b"signserv-keystore-v1"
_MASTER_CHECK_PLAINTEXT = b"signserv master key check"
_PRIVATE_KEY = b"private-key"
_HSM_WRAPPED_KEY = b"hsm-wrapped-key"
_MASTER_SHARE = b"master-share"
_MASTER_SHARE_WITH_POLICY = b"master-share+policy"


def parse_kdf_record(text: str) -> Argon2Parameters:
    """The argon2id cost a record names; anything else means the record is damaged."""
    try:
        return Argon2Parameters.from_record(text)
    except UnknownKeyDerivation:
        raise KeystoreCorrupt("a key record names an unknown key-derivation function") from None


class MasterKey:
    """The server master key; its value never appears in ``repr``/``str``."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise MasterKeyInvalid(f"a master key is {KEY_BYTES} bytes, not {len(key)}")
        self._key = key

    @classmethod
    def generate(cls) -> MasterKey:
        """A fresh random master key."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """Decode the master key file's content: base64 of 32 bytes, surrounding whitespace ignored."""
        try:
            return cls(base64.b64decode(text.strip(), validate=True))
        except (binascii.Error, ValueError):
            raise MasterKeyInvalid("the master key file does not hold base64 of 32 bytes") from None

    def to_text(self) -> str:
        """The master key file's content."""
        return base64.b64encode(self._key).decode("ascii") + "\n"

    def __repr__(self) -> str:
        return "MasterKey(<hidden>)"

    __str__ = __repr__


@dataclass(frozen=True)
class SealedKey:
    """Everything a record stores about its private key; each field is useless on its own."""

    record_id: bytes
    kdf: Argon2Parameters
    token_salt: bytes
    token_share: bytes
    master_share: bytes
    private_key: bytes
    policy: bytes | None = None
    """The key's signing policy, bound into ``master_share``'s seal; None for no policy."""

    def __repr__(self) -> str:
        policy = "none" if self.policy is None else "bound"
        return (
            f"SealedKey(record_id={self.record_id.hex()}, kdf={self.kdf.as_record()}, "
            f"policy={policy})"
        )


# Cold runs yield the CPU to warm requests: niceness 19 weighs a thread at 1.5 % of a default one.
ARGON2_NICENESS = 19


def _yield_cpu_to_warm_requests() -> None:
    """Lower this thread's CPU priority; argon2id's lane threads inherit it (Linux nice is per thread)."""
    with contextlib.suppress(OSError, AttributeError):  # other kernels: leave the priority as it is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ARGON2_NICENESS)


class Argon2Runner:
    """Runs argon2id on at most ``max_concurrent`` threads of low CPU priority.

    The bound keeps a flood from exhausting memory (each run holds ``memory_cost_kib``); the
    priority keeps a flood of cold requests from starving warm ones of the CPU, since a run with
    p lanes is p busy threads. The pool is made on first use in the process that uses it, so a
    runner created before gunicorn forks its workers never waits on a parent's threads.
    """

    def __init__(self, parameters: Argon2Parameters, max_concurrent: int) -> None:
        self.parameters = parameters
        self._max_concurrent = max_concurrent
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()

    def _threads(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(
                    max_workers=self._max_concurrent,
                    thread_name_prefix="argon2id",
                    initializer=_yield_cpu_to_warm_requests,
                )
                self._pool_pid = os.getpid()
            return self._pool

    def derive(self, token: str, salt: bytes, parameters: Argon2Parameters) -> bytes:
        """The 32-byte token key for ``token`` under ``salt``."""
        run = self._threads().submit(
            derive_key, token.encode("utf-8"), salt, parameters, length=KEY_BYTES
        )
        return run.result()

    def spend_like_a_lookup(self, token: str, parameters: Argon2Parameters) -> None:
        """Cost an unknown-key request the argon2id run a stored key costs (no enumeration)."""
        self.derive(token, b"\x00" * SALT_BYTES, parameters)


def _associated_data(purpose: bytes, name: str, record_id: bytes) -> bytes:
    return b"|".join((_FORMAT, purpose, name.encode("utf-8"), record_id))


def _master_share_associated_data(name: str, record_id: bytes, policy: bytes | None) -> bytes:
    """What a master share's seal is bound to: key, record and, when it has one, the policy."""
    if policy is None:
        return _associated_data(_MASTER_SHARE, name, record_id)
    policy_digest = hashlib.sha256(policy).digest()
    return b"|".join(
        (_associated_data(_MASTER_SHARE_WITH_POLICY, name, record_id), b"sha256", policy_digest)
    )


def _seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def _open(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """Open a seal; raises InvalidTag when the key or associated data is wrong."""
    if len(sealed) < NONCE_BYTES + 16:
        raise InvalidTag
    return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)


def _data_key(name: str, record_id: bytes, master_share: bytes, token_share: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=record_id,
        info=_associated_data(b"data-key", name, record_id),
    ).derive(master_share + token_share)


def _open_master_share(name: str, sealed: SealedKey, master_key: MasterKey) -> bytes:
    try:
        return _open(
            master_key._key,
            sealed.master_share,
            _master_share_associated_data(name, sealed.record_id, sealed.policy),
        )
    except InvalidTag:
        raise MasterShareMismatch(
            f"the record of key {name!r} does not open with this master key: it was sealed "
            "under another one, or the record (or its policy) was altered without it"
        ) from None


def _open_token_share(name: str, sealed: SealedKey, token: str, argon2: Argon2Runner) -> bytes:
    token_key = argon2.derive(token, sealed.token_salt, sealed.kdf)
    try:
        return _open(
            token_key, sealed.token_share, _associated_data(b"token-share", name, sealed.record_id)
        )
    except InvalidTag:
        raise TokenRejected("the token does not unlock this key") from None


def _seal_token_share(
    name: str, record_id: bytes, token_share: bytes, token: str, argon2: Argon2Runner
) -> tuple[bytes, bytes]:
    salt = os.urandom(SALT_BYTES)
    token_key = argon2.derive(token, salt, argon2.parameters)
    sealed = _seal(token_key, token_share, _associated_data(b"token-share", name, record_id))
    return salt, sealed


def p521_scalar(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The private scalar, big-endian in 66 bytes: what is sealed, or handed to an HSM on import."""
    return private_key.private_numbers().private_value.to_bytes(P521_SCALAR_BYTES, "big")


def new_record_id() -> bytes:
    """A fresh random record id: names a record in every seal's associated data."""
    return os.urandom(RECORD_ID_BYTES)


def _seal_key_material(
    name: str,
    record_id: bytes,
    purpose: bytes,
    material: bytes,
    token: str,
    master_key: MasterKey,
    argon2: Argon2Runner,
) -> SealedKey:
    """Seal ``material`` for the record ``record_id`` of ``name``; opening it needs both secrets."""
    master_share = os.urandom(KEY_BYTES)
    token_share = os.urandom(KEY_BYTES)
    token_salt, sealed_token_share = _seal_token_share(name, record_id, token_share, token, argon2)
    data_key = _data_key(name, record_id, master_share, token_share)
    return SealedKey(
        record_id=record_id,
        kdf=argon2.parameters,
        token_salt=token_salt,
        token_share=sealed_token_share,
        master_share=_seal(
            master_key._key,
            master_share,
            _master_share_associated_data(name, record_id, None),
        ),
        private_key=_seal(data_key, material, _associated_data(purpose, name, record_id)),
    )


def _unseal_key_material(
    name: str,
    sealed: SealedKey,
    purpose: bytes,
    token: str,
    master_key: MasterKey,
    argon2: Argon2Runner,
) -> bytes:
    """Open what :func:`_seal_key_material` sealed; :class:`TokenRejected` for a wrong token."""
    token_share = _open_token_share(name, sealed, token, argon2)
    master_share = _open_master_share(name, sealed, master_key)
    data_key = _data_key(name, sealed.record_id, master_share, token_share)
    try:
        return _open(
            data_key, sealed.private_key, _associated_data(purpose, name, sealed.record_id)
        )
    except InvalidTag:
        raise KeystoreCorrupt(f"the private key of {name!r} fails its integrity check") from None


def seal_private_key(
    name: str,
    private_key: ec.EllipticCurvePrivateKey,
    token: str,
    master_key: MasterKey,
    argon2: Argon2Runner,
) -> SealedKey:
    """Seal a P-521 private key for storage under ``name``, recoverable only with both secrets."""
    return _seal_key_material(
        name, new_record_id(), _PRIVATE_KEY, p521_scalar(private_key), token, master_key, argon2
    )


def seal_hsm_wrapped_key(
    name: str,
    record_id: bytes,
    wrapped_key: bytes,
    token: str,
    master_key: MasterKey,
    argon2: Argon2Runner,
) -> SealedKey:
    """Seal a private key an HSM wrapped out under its own key: it takes both secrets AND that HSM.

    A separate purpose in the associated data: a record's kind cannot be switched to make
    the software path read a wrapped blob as a scalar, or the reverse.
    """
    return _seal_key_material(
        name, record_id, _HSM_WRAPPED_KEY, wrapped_key, token, master_key, argon2
    )


def verify_token(name: str, sealed: SealedKey, token: str, argon2: Argon2Runner) -> None:
    """Raise :class:`TokenRejected` unless ``token`` is the record's token (no unsealing)."""
    _open_token_share(name, sealed, token, argon2)


def unseal_private_key(
    name: str, sealed: SealedKey, token: str, master_key: MasterKey, argon2: Argon2Runner
) -> ec.EllipticCurvePrivateKey:
    """Recover the private key; :class:`TokenRejected` for a wrong token."""
    scalar = _unseal_key_material(name, sealed, _PRIVATE_KEY, token, master_key, argon2)
    return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP521R1())


def unseal_hsm_wrapped_key(
    name: str, sealed: SealedKey, token: str, master_key: MasterKey, argon2: Argon2Runner
) -> bytes:
    """The HSM-wrapped private key :func:`seal_hsm_wrapped_key` sealed (still wrapped)."""
    return _unseal_key_material(name, sealed, _HSM_WRAPPED_KEY, token, master_key, argon2)


def reseal_for_new_token(
    name: str, sealed: SealedKey, old_token: str, new_token: str, argon2: Argon2Runner
) -> SealedKey:
    """Rewrap the token share under ``new_token``; needs the old token, not the master key."""
    token_share = _open_token_share(name, sealed, old_token, argon2)
    salt, sealed_token_share = _seal_token_share(
        name, sealed.record_id, token_share, new_token, argon2
    )
    return replace(sealed, kdf=argon2.parameters, token_salt=salt, token_share=sealed_token_share)


def reseal_for_new_master_key(
    name: str, sealed: SealedKey, old_master_key: MasterKey, new_master_key: MasterKey
) -> SealedKey:
    """Rewrap the master share under ``new_master_key``; needs no token."""
    master_share = _open_master_share(name, sealed, old_master_key)
    resealed = _seal(
        new_master_key._key,
        master_share,
        _master_share_associated_data(name, sealed.record_id, sealed.policy),
    )
    return replace(sealed, master_share=resealed)


def verify_policy(name: str, sealed: SealedKey, master_key: MasterKey) -> bytes | None:
    """``sealed``'s policy once its master share proves it genuine (no token needed).

    Raises :class:`MasterShareMismatch` when the policy, or its absence, is not the one the
    master share was sealed with.
    """
    _open_master_share(name, sealed, master_key)
    return sealed.policy


def reseal_for_new_policy(
    name: str, sealed: SealedKey, policy: bytes | None, master_key: MasterKey
) -> SealedKey:
    """Bind ``policy`` (None: no policy) into the master share's seal; needs no token.

    The current binding is proven first: a record whose policy was altered stays refused.
    """
    master_share = _open_master_share(name, sealed, master_key)
    resealed = _seal(
        master_key._key,
        master_share,
        _master_share_associated_data(name, sealed.record_id, policy),
    )
    return replace(sealed, master_share=resealed, policy=policy)


def seal_server_secret(master_key: MasterKey, purpose: str, secret: bytes) -> bytes:
    """Seal a server-wide secret (such as the audit MAC key) under the master key."""
    return _seal(
        master_key._key,
        secret,
        _associated_data(b"server-secret", purpose, b""),
    )


def open_server_secret(master_key: MasterKey, purpose: str, sealed: bytes) -> bytes:
    """Open what :func:`seal_server_secret` sealed; a wrong master key means a damaged store."""
    try:
        return _open(
            master_key._key,
            sealed,
            _associated_data(b"server-secret", purpose, b""),
        )
    except InvalidTag:
        raise KeystoreCorrupt(
            f"the server secret {purpose!r} does not open with this master key"
        ) from None


def reseal_server_secret(
    purpose: str, sealed: bytes, old_master_key: MasterKey, new_master_key: MasterKey
) -> bytes:
    """Move a server-wide secret to a new master key (master-key rotation)."""
    return seal_server_secret(
        new_master_key, purpose, open_server_secret(old_master_key, purpose, sealed)
    )


def master_key_check(master_key: MasterKey) -> bytes:
    """A seal stored in the keystore so a wrong master key is caught when it is opened."""
    return _seal(
        master_key._key,
        _MASTER_CHECK_PLAINTEXT,
        _associated_data(b"master-check", "", b""),
    )


def matches_master_key_check(master_key: MasterKey, check: bytes) -> bool:
    """True when ``check`` was made by :func:`master_key_check` with this master key."""
    try:
        opened = _open(
            master_key._key,
            check,
            _associated_data(b"master-check", "", b""),
        )
    except InvalidTag:
        return False
    return opened == _MASTER_CHECK_PLAINTEXT
