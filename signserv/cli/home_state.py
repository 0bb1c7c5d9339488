"""Whether the chosen home is ready to open, and if not, where we looked and what to do next.

The default home ``./var/signserv`` is relative to the current directory, so the commonest
mistake is running a command from another directory: the message then says so rather than
suggesting ``signserv init``, which would create a second, empty home.
"""

from __future__ import annotations

from pathlib import Path

from keystore import KeyStore
from signserv.errors import SignservError
from signserv.host.config import DEFAULT_HOME, HOME_ENV, MASTER_KEY_FILE_ENV, Settings
from signserv.host.home import open_keystore


class HomeNotReady(SignservError):
    """The home lacks its master key, its keystore or both; the message names the next step."""


def _missing_home(settings: Settings) -> HomeNotReady:
    home = settings.home
    if home == DEFAULT_HOME.absolute():
        return HomeNotReady(
            f"no signserv home in this directory: {home} has no keystore and no master key. "
            f"The default home ./{DEFAULT_HOME} is relative to the current directory "
            f"({Path.cwd()}): run from the directory you ran `signserv init` in, or name the "
            f"home with --home DIR (or {HOME_ENV}); to create a new home here, run `signserv init`"
        )
    return HomeNotReady(
        f"no signserv home at {home}: it has no keystore and no master key. Check --home (or "
        f"{HOME_ENV}), or run `signserv init` to create a new home there"
    )


def require_ready_home(settings: Settings) -> None:
    """Raise :class:`HomeNotReady` unless both the master key file and the keystore exist."""
    master_key_file, keystore_file = settings.keystore.master_key_file, settings.keystore.path
    # A keystore in PostgreSQL has no file here; opening it says whether the database holds one.
    has_keystore = settings.keystore.url is not None or keystore_file.exists()
    has_master_key = master_key_file.exists()
    if has_master_key and has_keystore:
        return
    if has_keystore:
        # Name the keystore this home really uses: with keystore.url, keystore.path is unused.
        keystore = (
            f"the keystore {keystore_file}"
            if settings.keystore.url is None
            else "the PostgreSQL keystore that keystore.url names"
        )
        raise HomeNotReady(
            f"no master key file at {master_key_file} for {keystore}: restore "
            f"that file from your backup, or point {MASTER_KEY_FILE_ENV} at it. (`signserv init` "
            "refuses here: keys sealed under the lost master key cannot use a new one)"
        )
    if has_master_key:
        raise HomeNotReady(
            f"no keystore at {keystore_file}, though its master key {master_key_file} exists: "
            "`signserv restore BACKUP` brings back your keys, `signserv init` creates an empty "
            "keystore under this master key"
        )
    raise _missing_home(settings)


def open_home_keystore(settings: Settings) -> KeyStore:
    """The home's keystore, or :class:`HomeNotReady` saying where we looked and what to do."""
    require_ready_home(settings)
    return open_keystore(settings)
