"""One process's connection to a PKCS#11 token: the module, the token, the login, and recovery.

PKCS#11 logs in per application, not per session: one login session stays open and every other
session shares its login. A failure that means the connection is gone (session closed, token
removed, module reset) makes the next use reconnect: the module is re-initialised (so a token
that came back is seen again), the token found and the user logged in anew. Every error leaves
this module as a :class:`keystore.KeyBackendUnavailable` naming the condition, never a PIN.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pkcs11
from pkcs11 import exceptions as p11

from keystore.errors import HsmFull, HsmLoginRefused, KeyBackendUnavailable

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Library

_Result = TypeVar("_Result")

# Conditions after which the same operation may succeed on a fresh connection.
CONNECTION_LOST: tuple[type[Exception], ...] = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.ObjectHandleInvalid,
    p11.KeyHandleInvalid,
    p11.UserNotLoggedIn,
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.GeneralError,
    p11.NoSuchKey,
)
_PIN_REFUSED = (p11.PinIncorrect, p11.PinLocked, p11.PinExpired, p11.PinInvalid, p11.PinLenRange)


@dataclass(frozen=True)
class TokenSelector:
    """Which token of a module to use: by label, serial number or slot id (at least one)."""

    label: str | None = None
    serial: str | None = None
    slot: int | None = None

    def __post_init__(self) -> None:
        if self.label is None and self.serial is None and self.slot is None:
            raise ValueError("a PKCS#11 token is chosen by its label, serial or slot")

    def __str__(self) -> str:
        chosen = [
            f"{name} {value!r}"
            for name, value in (("label", self.label), ("serial", self.serial), ("slot", self.slot))
            if value is not None
        ]
        return "token with " + " and ".join(chosen)


@dataclass(frozen=True)
class UserPinSource:
    """Where the user PIN comes from (a file or an environment variable), read on every login."""

    described_as: str
    """For messages: "file /run/secrets/hsm-pin", "environment variable X" (never the PIN)."""
    read: Callable[[], str]


def translate(exc: p11.PKCS11Error, what: str) -> KeyBackendUnavailable:
    """The keystore error for a PKCS#11 failure while doing ``what``."""
    if isinstance(exc, p11.DeviceMemory):
        return HsmFull(f"the HSM token is full: cannot {what}")
    if isinstance(exc, p11.NoSuchKey):
        return KeyBackendUnavailable(
            f"the HSM token holds no wrapping key for this key (destroyed, or not the token it "
            f"was made in): cannot {what}"
        )
    if isinstance(exc, CONNECTION_LOST):
        return KeyBackendUnavailable(
            f"the HSM token is not reachable ({type(exc).__name__}): cannot {what}"
        )
    return KeyBackendUnavailable(f"the HSM failed ({type(exc).__name__}): cannot {what}")


class TokenConnection:
    """A logged-in connection to one token through one PKCS#11 module, shared by threads."""

    def __init__(self, module: Path, selector: TokenSelector, user_pin: UserPinSource) -> None:
        self.module = module
        self.selector = selector
        self._user_pin = user_pin
        self._lock = threading.Lock()
        self._token: pkcs11.Token | None = None
        self._login: pkcs11.Session | None = None
        self._connected_pid: int | None = None
        self._refused_pin: bytes | None = None
        self.generation = 0
        """Counts connections: objects made in an earlier one are gone."""

    @property
    def location(self) -> str:
        """The module and token, for people."""
        return f"PKCS#11 {self.selector} in {self.module}"

    def run(self, what: str, operation: Callable[[pkcs11.Session], _Result]) -> _Result:
        """``operation`` on a fresh read-write session; once more on a new connection if it broke."""
        generation = self.generation
        try:
            return self._run_once(what, operation)
        except KeyBackendUnavailable as exc:
            if not isinstance(exc.__cause__, CONNECTION_LOST):
                raise
        self.reconnect(generation)
        return self._run_once(what, operation)

    def _run_once(self, what: str, operation: Callable[[pkcs11.Session], _Result]) -> _Result:
        token = self.token()
        try:
            with token.open(rw=True) as session:
                return operation(session)
        except p11.PKCS11Error as exc:
            raise translate(exc, what) from exc

    def token(self) -> pkcs11.Token:
        """The logged-in token, connecting first if needed (or after this process forked)."""
        with self._lock:
            if self._token is None or self._connected_pid != os.getpid():
                self._connect()
            assert self._token is not None  # _connect sets it or raises
            return self._token

    def reconnect(self, seen_generation: int) -> None:
        """Start a new connection, unless another thread already did since ``seen_generation``."""
        with self._lock:
            if self.generation == seen_generation:
                self._token = None

    def check(self) -> None:
        """Raise unless the token is present and logged in (a probe: cheap, no login retries)."""
        self.token()
        try:
            self._find_token(self._load_module())
        except KeyBackendUnavailable:
            self.reconnect(self.generation)
            raise

    def _connect(self) -> None:
        """Load the module, find the token and log in; called with the lock held."""
        lib = self._load_module()
        if self._connected_pid is not None:
            # A reconnection (or a forked child): reset the module so a token that was removed
            # and came back is seen again, and no handle of the old connection lingers.
            self._reset_module(lib)
        token = self._find_token(lib)
        self._login = self._log_in(token)
        self._token = token
        self._connected_pid = os.getpid()
        self.generation += 1

    def _load_module(self) -> Pkcs11Library:
        if not self.module.is_file():
            raise KeyBackendUnavailable(f"the PKCS#11 module {self.module} does not exist")
        try:
            return pkcs11.lib(str(self.module))
        except p11.PKCS11Error as exc:
            raise KeyBackendUnavailable(
                f"the PKCS#11 module {self.module} cannot be loaded: {exc}"
            ) from exc

    def _reset_module(self, lib: Pkcs11Library) -> None:
        try:
            lib.reinitialize()
        except p11.PKCS11Error as exc:
            raise translate(exc, f"re-initialise {self.module}") from exc

    def _find_token(self, lib: Pkcs11Library) -> pkcs11.Token:
        selector = self.selector
        try:
            tokens = [
                token
                for token in lib.get_tokens(
                    token_label=selector.label,
                    token_serial=None if selector.serial is None else selector.serial.encode(),
                )
                if selector.slot is None or token.slot.slot_id == selector.slot
            ]
        except p11.PKCS11Error as exc:
            raise translate(exc, f"list the tokens of {self.module}") from exc
        if len(tokens) != 1:
            how_many = "no" if not tokens else f"{len(tokens)}"
            raise KeyBackendUnavailable(
                f"{how_many} {selector} in {self.module} (removed, or not initialised?)"
            )
        found: pkcs11.Token = tokens[0]
        return found

    def _log_in(self, token: pkcs11.Token) -> pkcs11.Session:
        pin = self._user_pin.read()
        digest = hashlib.sha256(pin.encode("utf-8")).digest()
        refused = HsmLoginRefused(
            f"the HSM refused the user PIN from {self._user_pin.described_as}; "
            "it is not tried again until it changes"
        )
        if digest == self._refused_pin:
            raise refused
        try:
            return token.open(user_pin=pin)
        except p11.UserAlreadyLoggedIn:
            # Another connection in this process holds the login; PKCS#11 shares it.
            return token.open()
        except _PIN_REFUSED:
            self._refused_pin = digest
            raise refused from None
        except p11.PKCS11Error as exc:
            raise translate(exc, f"log in to the {self.selector}") from exc
