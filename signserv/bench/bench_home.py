"""A throwaway signserv home for the benchmark: config, master key, keystore and its keys."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from keystore import PKCS11_KIND, SOFTWARE_KIND
from keystore.postgres import erase_throwaway_keystore
from signserv.errors import SignservError
from signserv.host.config import KdfSettings, load_settings
from signserv.host.home import initialize_home, open_keystore, postgres_database
from signserv.secret import Secret

# Test-speed argon2id for --smoke only: its cold-path figures are not production figures.
SMOKE_KDF = KdfSettings(time_cost=1, memory_cost_kib=8192, parallelism=1)
TOKEN_BYTES = 32  # like the tokens `signserv keys create` generates


class BenchDatabaseNotEmpty(SignservError):
    """The database given for the benchmark already holds a keystore; it is left alone."""


@dataclass(frozen=True)
class BenchHome:
    """A home directory, the config the service reads, and the tokens of the keys in it."""

    home: Path
    config_file: Path
    tokens: dict[str, Secret[str]]

    def config_with_server(self, variant: str, **server: object) -> Path:
        """A second config for the same home, named after ``variant``, with these ``server``
        settings (e.g. the unlocked-key cache off, so that every request is cold)."""
        path = self.config_file.with_name(f"config-{variant}.yaml")
        document = yaml.safe_load(self.config_file.read_text())
        document["server"] = server
        path.write_text(yaml.safe_dump(document))
        return path


def make_bench_home(
    directory: Path,
    kdf: KdfSettings,
    key_names: list[str],
    hsm: dict[str, str] | None = None,
    hsm_key_names: tuple[str, ...] = (),
    keystore: Mapping[str, str] | None = None,
) -> BenchHome:
    """Initialize a home under ``directory`` with ``kdf`` and create ``key_names`` in it; with
    ``hsm`` (a ``pkcs11`` config section), ``hsm_key_names`` are created in that HSM.

    ``keystore`` is the config's keystore section: none for SQLite, or a PostgreSQL ``url``
    (and ``password_file``) naming an empty database, which :func:`erase_bench_keystore` empties
    again.
    """
    config_file = directory / "config.yaml"
    kdf_section = {
        "time_cost": kdf.time_cost,
        "memory_cost_kib": kdf.memory_cost_kib,
        "parallelism": kdf.parallelism,
        "max_concurrent": kdf.max_concurrent,
    }
    document: dict[str, object] = {"kdf": kdf_section}
    if hsm is not None:
        document["pkcs11"] = hsm
    if keystore:
        document["keystore"] = dict(keystore)
    config_file.write_text(yaml.safe_dump(document))
    settings = load_settings(directory / "home", config_file)
    if not initialize_home(settings).created_keystore:
        raise BenchDatabaseNotEmpty(
            f"{settings.keystore.url} already holds a keystore; the benchmark needs an empty "
            "database of its own"
        )
    store = open_keystore(settings)
    tokens = {}
    try:
        kinds = {name: SOFTWARE_KIND for name in key_names}
        if hsm is not None:
            kinds.update({name: PKCS11_KIND for name in hsm_key_names})
        for name, kind in kinds.items():
            token = Secret(secrets.token_urlsafe(TOKEN_BYTES))
            store.create_key(name, token.reveal(), kind)
            tokens[name] = token
    finally:
        store.close()
    return BenchHome(home=settings.home, config_file=config_file, tokens=tokens)


def erase_bench_keystore(home: BenchHome) -> None:
    """Drop the throwaway keystore :func:`make_bench_home` created in PostgreSQL (if any)."""
    database = postgres_database(load_settings(home.home, home.config_file))
    if database is not None:
        erase_throwaway_keystore(database)
        database.close()
