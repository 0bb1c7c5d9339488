"""Settings: YAML read with ``yaml.safe_load`` into frozen, validated dataclasses.

The YAML never holds secrets; it names the files they live in. Relative paths are resolved
against the home directory. A wrong key or type is an error naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import parse_qs, urlsplit

import yaml

from keystore import Argon2Parameters
from keystore.audit_checkpoint import require_origin
from signserv.errors import SignservError

DEFAULT_HOME = Path("var/signserv")
HOME_ENV = "SIGNSERV_HOME"
CONFIG_ENV = "SIGNSERV_CONFIG"
MASTER_KEY_FILE_ENV = "SIGNSERV_MASTER_KEY_FILE"


class ConfigError(SignservError, ValueError):
    """A configuration file that cannot be read or holds a wrong key, type or value."""


_MINIMUM = "minimum"


def at_least(minimum: int, *, default: int) -> int:
    """An integer setting: ``default`` unless configured, and never configured below ``minimum``."""
    value: int = field(default=default, metadata={_MINIMUM: minimum})
    return value


@dataclass(frozen=True)
class KeystoreSettings:
    """Where the sealed keys and the master key live.

    ``url`` selects PostgreSQL (``postgresql://user@host:port/database``) instead of the SQLite
    file at ``path``: the key records, lockout counters and audit chain then live in that
    database, shared by every replica. Its password comes from ``password_file``, or from libpq
    (``PGPASSWORD``, ``~/.pgpass``, ``PGPASSFILE``) — never from the URL or this file. A replica
    started before its database waits up to ``startup_wait_seconds`` for it.
    """

    path: Path = Path("keystore.db")
    master_key_file: Path = Path("master.key")
    url: str | None = None
    password_file: Path | None = None
    startup_wait_seconds: int = at_least(0, default=60)
    """How long `signserv serve` waits for an unreachable database before it gives up."""

    def __post_init__(self) -> None:
        if self.url is not None:
            _refuse_unusable_database_url(self.url)
        elif self.password_file is not None:
            raise ValueError("'keystore.password_file' needs 'keystore.url'")


def _refuse_unusable_database_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("'keystore.url' must be a postgresql:// URL")
    if parts.password is not None or "password" in parse_qs(parts.query):
        raise ValueError(
            "'keystore.url' must not hold a password: name a 'keystore.password_file', or use "
            "PGPASSWORD or a .pgpass file"
        )


@dataclass(frozen=True)
class KdfSettings:
    """argon2id cost for tokens (RFC 9106 defaults) and how many runs may overlap per worker."""

    time_cost: int = at_least(1, default=3)
    memory_cost_kib: int = at_least(8, default=65536)
    parallelism: int = at_least(1, default=4)
    max_concurrent: int = at_least(1, default=2)

    def __post_init__(self) -> None:
        self.parameters()  # the store's own bounds: refuse here what it could not open later

    def parameters(self) -> Argon2Parameters:
        """The argon2id parameters new token seals are made with."""
        return Argon2Parameters(self.time_cost, self.memory_cost_kib, self.parallelism)


@dataclass(frozen=True)
class ServerSettings:
    """How `signserv serve` runs gunicorn, and per-request limits."""

    bind: str = "127.0.0.1:8080"
    workers: int = at_least(1, default=2)
    timeout_seconds: int = at_least(1, default=30)
    max_request_bytes: int = at_least(1024, default=1024 * 1024)
    unlock_cache_seconds: int = at_least(0, default=300)
    unlock_cache_size: int = at_least(1, default=256)
    rate_limit_per_second: int = at_least(0, default=0)
    rate_limit_burst: int = at_least(1, default=20)
    request_read_seconds: int = at_least(1, default=10)
    requests_read_per_address: int = at_least(0, default=8)
    connections_per_address: int = at_least(0, default=64)
    cold_request_slots: int = at_least(1, default=6)
    forwarded_allow_ips: str = ""
    proxy_protocol_from: str = ""
    """Load balancers whose PROXY protocol (v1) header names the client: its address then is
    the one lockout, limits and audit see. Empty: no PROXY header is accepted from anyone."""
    access_log: bool = False

    def __post_init__(self) -> None:
        for setting in ("forwarded_allow_ips", "proxy_protocol_from"):
            _addresses(setting, getattr(self, setting))

    def trusted_proxies(self) -> list[str]:
        """The addresses and networks in ``forwarded_allow_ips``."""
        return _addresses("forwarded_allow_ips", self.forwarded_allow_ips)

    def proxy_protocol_senders(self) -> list[str]:
        """The addresses and networks in ``proxy_protocol_from``."""
        return _addresses("proxy_protocol_from", self.proxy_protocol_from)


def _addresses(setting: str, text: str) -> list[str]:
    """The comma-separated IP addresses and networks of ``server.<setting>``, checked."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"'server.{setting}': {entry!r} is not an IP address or network"
            ) from None
    return entries


@dataclass(frozen=True)
class LockoutSettings:
    """Thresholds and bounds of the brute-force lockout (signserv.server.lockout, DESIGN §5)."""

    pair_threshold: int = at_least(1, default=10)
    key_threshold: int = at_least(1, default=100)
    pair_max_seconds: int = at_least(1, default=900)
    key_max_seconds: int = at_least(1, default=60)
    window_seconds: int = at_least(60, default=3600)


@dataclass(frozen=True)
class AuditSettings:
    """Where the hash-chained audit log is written, and whether each record is fsync'ed."""

    path: Path = Path("audit.log")
    fsync: bool = True


CLIENT_CERTIFICATE_MODES = ("required", "optional")


@dataclass(frozen=True)
class AuditCheckpointSettings:
    """Signed checkpoints of the audit chain, written to sinks outside the home (off without one).

    ``origin`` names the log and the checkpoint key; empty means ``signserv-audit/<16 hex digits
    of the key's fingerprint>``, the same for every replica of one keystore. ``file`` must be an
    absolute path outside the home; ``syslog_address`` is ``host:port`` (UDP) or a socket path;
    ``http_url`` receives each checkpoint as a text/plain POST.
    """

    interval_seconds: int = at_least(1, default=300)
    origin: str = ""
    file: Path | None = None
    syslog_address: str | None = None
    http_url: str | None = None
    http_ca_file: Path | None = None
    http_timeout_seconds: int = at_least(1, default=10)

    def __post_init__(self) -> None:
        if self.origin:
            try:
                require_origin(self.origin)
            except ValueError as exc:
                raise ValueError(f"'audit_checkpoints.origin': {exc}") from None
        if self.file is not None and not self.file.is_absolute():
            raise ValueError(
                "'audit_checkpoints.file' must be an absolute path outside the service's home"
            )
        if self.syslog_address is not None:
            syslog_address(self.syslog_address)
        if self.http_url is not None and urlsplit(self.http_url).scheme not in ("http", "https"):
            raise ValueError("'audit_checkpoints.http_url' must be an http:// or https:// URL")
        if self.http_ca_file is not None and self.http_url is None:
            raise ValueError("'audit_checkpoints.http_ca_file' needs 'audit_checkpoints.http_url'")

    @property
    def enabled(self) -> bool:
        """True when at least one sink is configured."""
        return any(sink is not None for sink in (self.file, self.syslog_address, self.http_url))


def syslog_address(address: str) -> str | tuple[str, int]:
    """A socket path (``/dev/log``) as it is, or ``host:port`` as a UDP address."""
    if address.startswith("/"):
        return address
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            "'audit_checkpoints.syslog_address' must be host:port (UDP) or an absolute socket path"
        )
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class TLSSettings:
    """TLS for `signserv serve` (gunicorn), and client certificates under ``client_ca_file``.

    With a client CA, ``client_certificates: required`` (the default) refuses every connection
    without a certificate it issued; ``optional`` lets clients without one connect, and a key
    bound to a certificate (docs/policy.md) is then refused per key. A certificate that is
    sent must chain to the CA either way.
    """

    certfile: Path | None = None
    keyfile: Path | None = None
    client_ca_file: Path | None = None
    client_certificates: str = "required"

    def __post_init__(self) -> None:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("'tls.certfile' and 'tls.keyfile' go together")
        if self.client_ca_file is not None and self.certfile is None:
            raise ValueError("'tls.client_ca_file' needs 'tls.certfile' and 'tls.keyfile'")
        if self.client_certificates not in CLIENT_CERTIFICATE_MODES:
            raise ValueError(
                f"'tls.client_certificates' is one of {', '.join(CLIENT_CERTIFICATE_MODES)}"
            )

    @property
    def enabled(self) -> bool:
        """True when the service speaks HTTPS."""
        return self.certfile is not None


PKCS11_PIN_ENV = "SIGNSERV_PKCS11_PIN"
# A setting that would put a secret in the YAML is refused with where that secret goes instead.
_SECRET_ELSEWHERE = {
    ("pkcs11", "user_pin"): "the HSM user PIN never goes in the config: put it in a file named "
    f"by 'pkcs11.user_pin_file' (mode 0600), or in the environment variable {PKCS11_PIN_ENV}",
}


@dataclass(frozen=True)
class Pkcs11Settings:
    """A PKCS#11 HSM for keys created with ``--backend pkcs11``; off while ``module`` is unset.

    The token is chosen by label, serial or slot. The user PIN is read from ``user_pin_file``
    or, without one, from the environment variable ``SIGNSERV_PKCS11_PIN``: never from here.
    """

    module: Path | None = None
    token_label: str | None = None
    token_serial: str | None = None
    slot: int | None = field(default=None, metadata={_MINIMUM: 0})
    user_pin_file: Path | None = None
    use_for_new_keys: bool = False

    def __post_init__(self) -> None:
        if self.module is None:
            if self.use_for_new_keys:
                raise ValueError("'pkcs11.use_for_new_keys' needs 'pkcs11.module'")
            return
        if not self.module.is_absolute():
            raise ValueError("'pkcs11.module' must be an absolute path to the PKCS#11 library")
        if self.token_label is None and self.token_serial is None and self.slot is None:
            raise ValueError(
                "'pkcs11.module' needs 'pkcs11.token_label', 'pkcs11.token_serial' or "
                "'pkcs11.slot' to choose the token"
            )

    @property
    def enabled(self) -> bool:
        """True when an HSM is configured."""
        return self.module is not None


@dataclass(frozen=True)
class Settings:
    """Everything signserv reads from its configuration, with absolute paths."""

    home: Path
    keystore: KeystoreSettings = field(default_factory=KeystoreSettings)
    kdf: KdfSettings = field(default_factory=KdfSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    lockout: LockoutSettings = field(default_factory=LockoutSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    audit_checkpoints: AuditCheckpointSettings = field(default_factory=AuditCheckpointSettings)
    tls: TLSSettings = field(default_factory=TLSSettings)
    pkcs11: Pkcs11Settings = field(default_factory=Pkcs11Settings)


# Each YAML section is a field of Settings; ``home`` comes from the command line or environment.
_SECTIONS: dict[str, type[Any]] = {
    name: section for name, section in get_type_hints(Settings).items() if name != "home"
}


def _checked_value(
    setting: dataclasses.Field[Any], expected: object, value: object, where: str
) -> object:
    """``value`` as the type ``setting`` declares, or a ConfigError saying what ``where`` must be."""
    if expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
        return value
    if expected in (int, int | None):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer")
        minimum: int = setting.metadata[_MINIMUM]
        if value < minimum:
            raise ConfigError(f"{where} must be at least {minimum}")
        return value
    if expected in (Path, Path | None):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be a non-empty path string")
        return Path(value)
    if expected in (str, str | None):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string")
        return value
    raise TypeError(f"{setting.name}: no reader for settings of type {expected!r}")


def _build_section(cls: type[Any], values: object, source: str, section: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: '{section}' must be a mapping")
    settings = {item.name: item for item in dataclasses.fields(cls)}
    types = get_type_hints(cls)
    checked: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{source}: '{section}.{key}'"
        if (section, key) in _SECRET_ELSEWHERE:
            raise ConfigError(f"{where}: {_SECRET_ELSEWHERE[section, key]}")
        if key not in settings:
            raise ConfigError(f"{where} is not a known setting (known: {', '.join(settings)})")
        checked[key] = _checked_value(settings[key], types[key], value, where)
    try:
        return cls(**checked)
    except ValueError as exc:  # a section's own consistency rule
        raise ConfigError(f"{source}: {exc}") from None


def _resolve_paths(settings: Settings) -> Settings:
    def under_home(path: Path) -> Path:
        return path if path.is_absolute() else settings.home / path

    def optional_under_home(path: Path | None) -> Path | None:
        return None if path is None else under_home(path)

    master_key_file = os.environ.get(MASTER_KEY_FILE_ENV)
    password_file = settings.keystore.password_file
    keystore = dataclasses.replace(
        settings.keystore,
        path=under_home(settings.keystore.path),
        password_file=optional_under_home(password_file),
        master_key_file=Path(master_key_file)
        if master_key_file
        else under_home(settings.keystore.master_key_file),
    )
    audit = dataclasses.replace(settings.audit, path=under_home(settings.audit.path))
    tls = dataclasses.replace(
        settings.tls,
        certfile=optional_under_home(settings.tls.certfile),
        keyfile=optional_under_home(settings.tls.keyfile),
        client_ca_file=optional_under_home(settings.tls.client_ca_file),
    )
    pkcs11 = settings.pkcs11
    if pkcs11.user_pin_file is not None:
        pkcs11 = dataclasses.replace(pkcs11, user_pin_file=under_home(pkcs11.user_pin_file))
    checkpoints = settings.audit_checkpoints
    if checkpoints.http_ca_file is not None:
        checkpoints = dataclasses.replace(
            checkpoints, http_ca_file=under_home(checkpoints.http_ca_file)
        )
    return dataclasses.replace(
        settings,
        keystore=keystore,
        audit=audit,
        audit_checkpoints=checkpoints,
        tls=tls,
        pkcs11=pkcs11,
    )


def _refuse_checkpoint_file_in_home(settings: Settings, source: str) -> None:
    """A checkpoint kept in the home is lost or rolled back with it: it must live elsewhere."""
    sink = settings.audit_checkpoints.file
    if sink is None:
        return
    home = settings.home.resolve()
    if sink.resolve() == home or home in sink.resolve().parents:
        raise ConfigError(
            f"{source}: 'audit_checkpoints.file' ({sink}) is inside the service's home {home}; "
            "a checkpoint there is lost or rolled back with the log it vouches for, so name a "
            "file on another volume"
        )


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
    settings = _resolve_paths(Settings(home=home, **sections))
    _refuse_checkpoint_file_in_home(settings, str(config_file))
    return settings
