"""The signserv home: creating it (`signserv init`) and opening its keystore."""

from __future__ import annotations

from dataclasses import dataclass

from keystore import (
    Argon2Runner,
    KeyStore,
    KeystoreExists,
    MasterKey,
    read_master_key,
    write_master_key,
)
from signserv.config import Settings


@dataclass(frozen=True)
class InitResult:
    """What `init` did, for the CLI to report."""

    created_master_key: bool
    created_keystore: bool


def _argon2(settings: Settings) -> Argon2Runner:
    return Argon2Runner(settings.kdf.parameters(), settings.kdf.max_concurrent)


def open_keystore(settings: Settings) -> KeyStore:
    """Open the configured keystore with the configured master key, checking both."""
    master_key = read_master_key(settings.keystore.master_key_file)
    return KeyStore.open(settings.keystore.path, master_key, _argon2(settings))


def initialize_home(settings: Settings) -> InitResult:
    """Create the home directory (0700), a master key and an empty keystore.

    Never replaces an existing master key or keystore: an existing pair is left as it is and
    reported as such; a keystore without its master key (or the reverse) is an error.
    """
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    master_file = settings.keystore.master_key_file
    store_file = settings.keystore.path
    if master_file.exists() and store_file.exists():
        open_keystore(settings).close()
        return InitResult(created_master_key=False, created_keystore=False)
    if store_file.exists():
        raise KeystoreExists(
            f"a keystore exists at {store_file} but its master key file {master_file} is missing; "
            "restore the master key instead of creating a new one"
        )
    created_master_key = not master_file.exists()
    if created_master_key:
        write_master_key(master_file, MasterKey.generate())
    master_key = read_master_key(master_file)
    KeyStore.create(store_file, master_key, _argon2(settings)).close()
    return InitResult(created_master_key=created_master_key, created_keystore=True)
