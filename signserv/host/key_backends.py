"""The key backends a home is configured with: where keys of other kinds than software live.

Today one: a PKCS#11 HSM (``pkcs11`` section). Its user PIN comes from a file or the environment,
is read on every login, and appears in no message: messages say where it came from.
"""

from __future__ import annotations

import os
from pathlib import Path

from keystore import PKCS11_KIND, SOFTWARE_KIND, KeyBackend, KeyBackendUnavailable
from signserv.host.config import PKCS11_PIN_ENV, Pkcs11Settings, Settings

KEY_KINDS = (SOFTWARE_KIND, PKCS11_KIND)


def default_key_kind(settings: Settings) -> str:
    """Where `keys create` and `keys import` put a key unless told (``--backend``)."""
    return PKCS11_KIND if settings.pkcs11.use_for_new_keys else SOFTWARE_KIND


def _read_pin_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise KeyBackendUnavailable(f"cannot read the HSM user PIN file {path}: {reason}") from None


def _read_pin_environment() -> str:
    pin = os.environ.get(PKCS11_PIN_ENV)
    if not pin:
        raise KeyBackendUnavailable(
            f"no HSM user PIN: set 'pkcs11.user_pin_file' or the environment variable "
            f"{PKCS11_PIN_ENV}"
        )
    return pin


def _pkcs11_backend(settings: Pkcs11Settings) -> KeyBackend:
    try:
        from keystore.pkcs11 import (
            Pkcs11KeyBackend,
            TokenConnection,
            TokenSelector,
            UserPinSource,
        )
    except ImportError:
        raise KeyBackendUnavailable(
            "the 'pkcs11' section is configured but python-pkcs11 is not installed "
            "(pip install 'signserv[pkcs11]')"
        ) from None
    pin_file = settings.user_pin_file
    pin = (
        UserPinSource(f"file {pin_file}", lambda: _read_pin_file(pin_file))
        if pin_file is not None
        else UserPinSource(f"environment variable {PKCS11_PIN_ENV}", _read_pin_environment)
    )
    assert settings.module is not None
    selector = TokenSelector(settings.token_label, settings.token_serial, settings.slot)
    return Pkcs11KeyBackend(TokenConnection(settings.module, selector, pin))


def configured_key_backends(settings: Settings) -> tuple[KeyBackend, ...]:
    """The backends for records of other kinds than software, as the settings name them."""
    if not settings.pkcs11.enabled:
        return ()
    return (_pkcs11_backend(settings.pkcs11),)
