"""One process's connection to a PKCS#11 token: the module, the token, the login, and recovery.

python-pkcs11 initialises every module with ``C_Initialize(NULL)``: no locking is asked for, so
a module may assume that one thread at a time calls it (SoftHSM2 then runs without its own
mutexes, and two threads signing at once can crash the process). Every call into a module in
this process therefore holds :data:`MODULE_CALLS`, one lock for the whole process: sign, unwrap,
generate, destroy, login, session open and close, re-initialisation.

PKCS#11 logs in per application, not per session: one login session stays open and every other
session shares its login. A failure that means the connection is gone (session closed, token
removed, module reset) makes the next use reconnect: the module is re-initialised (so a token
that came back is seen again), the token found and the user logged in anew. Every error leaves
this module as a :class:`keystore.KeyBackendUnavailable` naming the condition, never a PIN.
"""

from __future__ import annotations

import contextlib
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

MODULE_CALLS = threading.RLock()
"""Held around every PKCS#11 call of this process (python-pkcs11 asks modules for no locking)."""
# A child forked while another thread holds it would inherit it held forever.
os.register_at_fork(
    before=MODULE_CALLS.acquire,
    after_in_parent=MODULE_CALLS.release,
    after_in_child=MODULE_CALLS.release,
)
# Per process and module path, a marker of the module's current initialisation: a connection
# that re-initialises the module replaces it, which ends every connection to that module (their
# session handles died with the old initialisation), not only its own.
_module_lives: dict[tuple[int, Path], object] = {}

# Conditions after which the same operation may succeed on a fresh connection. A missing key
# (NoSuchKey) and CKR_GENERAL_ERROR are not among them: reconnecting does not bring a key back.
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
    if isinstance(exc, CONNECTION_LOST):
        return KeyBackendUnavailable(
            f"the HSM token is not reachable ({type(exc).__name__}): cannot {what}"
        )
    return KeyBackendUnavailable(f"the HSM failed ({type(exc).__name__}): cannot {what}")


class HeldSession:
    """A session kept open for the session objects it holds; closed only on its own connection.

    After a reconnection its handle means nothing, or another session's: it is never used or
    closed again (the module's re-initialisation already closed it).
    """

    def __init__(self, connection: TokenConnection, session: pkcs11.Session) -> None:
        self._connection = connection
        self.session = session
        self._connected = connection.connected

    @property
    def current(self) -> bool:
        """True while the connection that opened it lasts (call with :data:`MODULE_CALLS` held)."""
        return self._connected is not None and self._connected is self._connection.connected

    def close(self) -> None:
        """Close it, destroying its session objects; a no-op once its connection is gone."""
        with MODULE_CALLS:
            if self.current:
                # A failure means the session is gone already, and its objects with it.
                with contextlib.suppress(p11.PKCS11Error):
                    self.session.close()
            self._connected = None


class TokenConnection:
    """A logged-in connection to one token through one PKCS#11 module, shared by threads."""

    def __init__(self, module: Path, selector: TokenSelector, user_pin: UserPinSource) -> None:
        self.module = module
        self.selector = selector
        self._user_pin = user_pin
        self._token: pkcs11.Token | None = None
        self._login: pkcs11.Session | None = None
        self._connected_pid: int | None = None
        self._connection: object | None = None
        self._module_life: object | None = None
        self._refused_pin: bytes | None = None

    @property
    def location(self) -> str:
        """The module and token, for people."""
        return f"PKCS#11 {self.selector} in {self.module}"

    @property
    def connected(self) -> object | None:
        """A marker of the current connection (None: none in this process); compare by identity."""
        life = _module_lives.get((os.getpid(), self.module))
        if self._connected_pid != os.getpid() or life is not self._module_life:
            return None
        return self._connection

    def run(self, what: str, operation: Callable[[pkcs11.Session], _Result]) -> _Result:
        """``operation`` in a fresh read-write session, closed after; once more on a new
        connection if the connection broke."""

        def in_closed_session() -> _Result:
            held = HeldSession(self, self.token().open(rw=True))
            try:
                return operation(held.session)
            finally:
                held.close()

        return self._retried(what, in_closed_session)

    def run_held(
        self, what: str, operation: Callable[[HeldSession], _Result]
    ) -> tuple[HeldSession, _Result]:
        """``operation`` in a fresh read-only session that stays open (it holds session objects);
        once more on a new connection if the connection broke."""

        def in_held_session() -> tuple[HeldSession, _Result]:
            held = HeldSession(self, self.token().open())
            try:
                return held, operation(held)
            except BaseException:
                held.close()
                raise

        return self._retried(what, in_held_session)

    def _retried(self, what: str, attempt: Callable[[], _Result]) -> _Result:
        with MODULE_CALLS:
            try:
                return self._translated(what, attempt)
            except KeyBackendUnavailable as exc:
                if not isinstance(exc.__cause__, CONNECTION_LOST):
                    raise
            self.disconnect()
            return self._translated(what, attempt)

    @staticmethod
    def _translated(what: str, attempt: Callable[[], _Result]) -> _Result:
        try:
            return attempt()
        except p11.PKCS11Error as exc:
            raise translate(exc, what) from exc

    def check_login_session(self) -> None:
        """Raise a connection-lost error if the login session is gone (the module was reset).

        Tells a lost login from a missing object: a search from a fresh session without the
        login just finds nothing. Call it with :data:`MODULE_CALLS` held and every session
        opened since the last successful call closed, so that no new session can have been
        given the old handle.
        """
        assert self._login is not None  # a connected token has its login session
        # Not a search: python-pkcs11 leaves a search whose start failed to the garbage
        # collector, which would end it outside MODULE_CALLS.
        with contextlib.suppress(p11.FunctionNotSupported):
            self._login.generate_random(64)

    def token(self) -> pkcs11.Token:
        """The logged-in token, connecting first if needed (or after this process forked)."""
        with MODULE_CALLS:
            if self._token is None or self.connected is None:
                self._connect()
            assert self._token is not None  # _connect sets it or raises
            return self._token

    def disconnect(self) -> None:
        """Forget the connection: the next use re-initialises the module and logs in anew."""
        with MODULE_CALLS:
            self._token = None
            self._connection = None

    def check(self) -> None:
        """Raise unless the token is present and logged in (a probe: cheap, no login retries)."""
        with MODULE_CALLS:
            self.token()
            try:
                self._find_token(self._load_module())
            except KeyBackendUnavailable:
                self.disconnect()
                raise

    def _connect(self) -> None:
        """Load the module, find the token and log in; called with :data:`MODULE_CALLS` held."""
        lib = self._load_module()
        self._connection = None
        life_key = (os.getpid(), self.module)
        life = _module_lives.get(life_key)
        if self._connected_pid is not None and (
            self._connected_pid != os.getpid() or life is self._module_life
        ):
            # A reconnection (or a forked child): reset the module so a token that was removed
            # and came back is seen again, and no handle of the old connection lingers. Not when
            # another connection already reset it since this one connected.
            self._reset_module(lib)
            life = None
        if life is None:
            life = _module_lives[life_key] = object()
        # From here on a failure makes the next attempt reset the module again.
        self._connected_pid = os.getpid()
        self._module_life = life
        token = self._find_token(lib)
        self._login = self._log_in(token)
        self._token = token
        self._connection = object()

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
            raise KeyBackendUnavailable(
                f"the tokens of {self.module} cannot be listed ({type(exc).__name__}): "
                f"is the {selector} removed, or the HSM unreachable?"
            ) from exc
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
