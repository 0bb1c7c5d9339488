"""Settings: YAML read with ``yaml.safe_load`` into frozen, validated dataclasses.

The YAML never holds secrets; it names the files they live in. Relative paths are resolved
against the home directory. A wrong key or type is an error naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from keystore import Argon2Parameters
from signserv.errors import SignservError
from signserv.server.lockout import LockoutSettings

DEFAULT_HOME = Path("var/signserv")
HOME_ENV = "SIGNSERV_HOME"
CONFIG_ENV = "SIGNSERV_CONFIG"
MASTER_KEY_FILE_ENV = "SIGNSERV_MASTER_KEY_FILE"


class ConfigError(SignservError, ValueError):
    """A configuration file that cannot be read or holds a wrong key, type or value."""


@dataclass(frozen=True)
class KeystoreSettings:
    """Where the sealed keys and the master key live."""

    path: Path = Path("keystore.db")
    master_key_file: Path = Path("master.key")


@dataclass(frozen=True)
class KdfSettings:
    """argon2id cost for tokens (RFC 9106 defaults) and how many runs may overlap per worker."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4
    max_concurrent: int = 2

    def __post_init__(self) -> None:
        self.parameters()  # the store's own bounds: refuse here what it could not open later

    def parameters(self) -> Argon2Parameters:
        """The argon2id parameters new token seals are made with."""
        return Argon2Parameters(self.time_cost, self.memory_cost_kib, self.parallelism)


@dataclass(frozen=True)
class ServerSettings:
    """How `signserv serve` runs gunicorn, and per-request limits."""

    bind: str = "127.0.0.1:8080"
    workers: int = 2
    timeout_seconds: int = 30
    max_request_bytes: int = 1024 * 1024
    unlock_cache_seconds: int = 300
    unlock_cache_size: int = 256
    rate_limit_per_second: int = 0
    rate_limit_burst: int = 20


@dataclass(frozen=True)
class AuditSettings:
    """Where the hash-chained audit log is written, and whether each record is fsync'ed."""

    path: Path = Path("audit.log")
    fsync: bool = True


@dataclass(frozen=True)
class TLSSettings:
    """TLS for `signserv serve` (gunicorn); a client CA makes client certificates mandatory."""

    certfile: Path | None = None
    keyfile: Path | None = None
    client_ca_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("'tls.certfile' and 'tls.keyfile' go together")
        if self.client_ca_file is not None and self.certfile is None:
            raise ValueError("'tls.client_ca_file' needs 'tls.certfile' and 'tls.keyfile'")

    @property
    def enabled(self) -> bool:
        """True when the service speaks HTTPS."""
        return self.certfile is not None


@dataclass(frozen=True)
class Settings:
    """Everything signserv reads from its configuration, with absolute paths."""

    home: Path
    keystore: KeystoreSettings = field(default_factory=KeystoreSettings)
    kdf: KdfSettings = field(default_factory=KdfSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    lockout: LockoutSettings = field(default_factory=LockoutSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    tls: TLSSettings = field(default_factory=TLSSettings)


_SECTIONS: dict[str, type[Any]] = {
    "tls": TLSSettings,
    "audit": AuditSettings,
    "keystore": KeystoreSettings,
    "kdf": KdfSettings,
    "server": ServerSettings,
    "lockout": LockoutSettings,
}
_MINIMUMS = {
    "time_cost": 1,
    "memory_cost_kib": 8,
    "parallelism": 1,
    "max_concurrent": 1,
    "workers": 1,
    "timeout_seconds": 1,
    "max_request_bytes": 1024,
    "unlock_cache_seconds": 0,
    "unlock_cache_size": 1,
    "rate_limit_per_second": 0,
    "rate_limit_burst": 1,
    "pair_threshold": 1,
    "key_threshold": 1,
    "pair_max_seconds": 1,
    "key_max_seconds": 1,
    "window_seconds": 60,
}


def _build_section(cls: type[Any], values: object, source: str, section: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: '{section}' must be a mapping")
    fields = {item.name: item for item in dataclasses.fields(cls)}
    checked: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{source}: '{section}.{key}'"
        if key not in fields:
            raise ConfigError(f"{where} is not a known setting (known: {', '.join(fields)})")
        expected = fields[key].type
        if expected in ("bool", bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false")
        elif expected in ("int", int):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{where} must be an integer")
            if value < _MINIMUMS.get(key, 0):
                raise ConfigError(f"{where} must be at least {_MINIMUMS.get(key, 0)}")
        elif expected in ("Path", "Path | None", Path):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where} must be a non-empty path string")
            value = Path(value)
        elif not isinstance(value, str):
            raise ConfigError(f"{where} must be a string")
        checked[key] = value
    try:
        return cls(**checked)
    except ValueError as exc:  # a section's own consistency rule
        raise ConfigError(f"{source}: {exc}") from None


def _resolve_paths(settings: Settings) -> Settings:
    def under_home(path: Path) -> Path:
        return path if path.is_absolute() else settings.home / path

    master_key_file = os.environ.get(MASTER_KEY_FILE_ENV)
    keystore = KeystoreSettings(
        path=under_home(settings.keystore.path),
        master_key_file=Path(master_key_file)
        if master_key_file
        else under_home(settings.keystore.master_key_file),
    )
    audit = dataclasses.replace(settings.audit, path=under_home(settings.audit.path))
    tls = dataclasses.replace(
        settings.tls,
        **{
            item.name: under_home(path)
            for item in dataclasses.fields(TLSSettings)
            if (path := getattr(settings.tls, item.name)) is not None
        },
    )
    return dataclasses.replace(settings, keystore=keystore, audit=audit, tls=tls)


def load_settings(home: Path | None = None, config_file: Path | None = None) -> Settings:
    """Settings for ``home`` (else $SIGNSERV_HOME, else ./var/signserv) from an optional YAML file."""
    home = (home or Path(os.environ.get(HOME_ENV) or DEFAULT_HOME)).absolute()
    config_file = config_file or (
        Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None
    )
    sections: dict[str, Any] = {}
    if config_file is not None:
        source = str(config_file)
        try:
            document = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{source}: cannot be read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{source}: is not UTF-8 text") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: is not valid YAML: {exc}") from None
        except (ValueError, RecursionError):  # PyYAML: an impossible date, deep nesting
            raise ConfigError(f"{source}: is not a usable YAML document") from None
        if document is None:
            document = {}
        if not isinstance(document, dict):
            raise ConfigError(f"{source}: the top level must be a mapping")
        for name, values in document.items():
            if name not in _SECTIONS:
                raise ConfigError(
                    f"{source}: '{name}' is not a known section (known: {', '.join(_SECTIONS)})"
                )
            sections[name] = _build_section(_SECTIONS[name], values, source, name)
    return _resolve_paths(Settings(home=home, **sections))
