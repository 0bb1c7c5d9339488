"""Settings: safe defaults, paths under home, and errors that name the key and the file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import get_type_hints

import pytest

from keystore import Argon2Parameters
from signserv.host.config import ConfigError, Settings, load_settings


def test_defaults_are_the_production_values(tmp_path: Path, monkeypatch) -> None:
    """RFC 9106 argon2id, loopback bind, 1 MiB body limit, 300 s unlock cache."""
    monkeypatch.delenv("SIGNSERV_MASTER_KEY_FILE", raising=False)
    monkeypatch.delenv("SIGNSERV_CONFIG", raising=False)
    settings = load_settings(tmp_path)
    assert settings.kdf.parameters() == Argon2Parameters(3, 65536, 4)
    assert settings.server.bind == "127.0.0.1:8080"
    assert settings.server.max_request_bytes == 1024 * 1024
    assert settings.server.unlock_cache_seconds == 300
    assert settings.keystore.path == tmp_path / "keystore.db"
    assert settings.keystore.master_key_file == tmp_path / "master.key"


def test_home_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SIGNSERV_HOME", str(tmp_path / "elsewhere"))
    assert load_settings().home == tmp_path / "elsewhere"


def test_master_key_file_from_the_environment_wins(tmp_path: Path, monkeypatch) -> None:
    """Docker secrets: SIGNSERV_MASTER_KEY_FILE=/run/secrets/signserv_master_key."""
    monkeypatch.setenv("SIGNSERV_MASTER_KEY_FILE", "/run/secrets/master")
    assert load_settings(tmp_path).keystore.master_key_file == Path("/run/secrets/master")


def test_yaml_overrides_and_relative_paths(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SIGNSERV_MASTER_KEY_FILE", raising=False)
    config = tmp_path / "c.yaml"
    config.write_text(
        "keystore:\n  path: data/keys.db\n  master_key_file: /etc/signserv/master.key\n"
        "server:\n  workers: 4\n  bind: 0.0.0.0:9000\n"
    )
    settings = load_settings(tmp_path / "home", config)
    assert settings.keystore.path == tmp_path / "home" / "data" / "keys.db"
    assert settings.keystore.master_key_file == Path("/etc/signserv/master.key")
    assert settings.server.workers == 4 and settings.server.bind == "0.0.0.0:9000"


def test_config_example_is_valid(tmp_path: Path) -> None:
    """The documented example loads without error and holds only defaults."""
    example = Path(__file__).parents[3] / "config.example.yaml"
    assert load_settings(tmp_path, example) == load_settings(tmp_path)


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("kdf:\n  time_cots: 3\n", "kdf.time_cots"),
        ("server:\n  workers: many\n", "server.workers"),
        ("server:\n  workers: 0\n", "server.workers"),
        ("server:\n  workers: true\n", "server.workers"),
        ("transport: {}\n", "'transport'"),
        ("keystore:\n  path: 5\n", "keystore.path"),
        ("server: [1, 2]\n", "'server'"),
        ("- a list\n", "top level"),
        ("kdf: {time_cost: 3\n", "not valid YAML"),
        ("master_key: c2VjcmV0\n", "'master_key'"),
        ("kdf:\n  time_cost: 65\n", "time_cost <= 64"),
        ("kdf:\n  parallelism: 4\n  memory_cost_kib: 16\n", "memory_cost_kib"),
        ("lockout:\n  window_seconds: 59\n", "'lockout.window_seconds' must be at least 60"),
        ("server:\n  max_request_bytes: 1023\n", "must be at least 1024"),
        ("server:\n  unlock_cache_seconds: -1\n", "must be at least 0"),
        ("audit:\n  fsync: 'yes'\n", "'audit.fsync' must be true or false"),
        ("tls:\n  certfile: ''\n", "'tls.certfile' must be a non-empty path string"),
        ("server:\n  bind: 8080\n", "'server.bind' must be a string"),
        ("keystore:\n  url: mysql://db/signserv\n", "'keystore.url' must be a postgresql://"),
        (
            "keystore:\n  url: postgresql://u:hunter2@db/s\n",
            "'keystore.url' must not hold a password",
        ),
        ("keystore:\n  url: postgresql://u@db/s?password=hunter2\n", "must not hold a password"),
        ("keystore:\n  password_file: pw\n", "'keystore.password_file' needs 'keystore.url'"),
        ("server:\n  forwarded_allow_ips: '*'\n", "'*' is not an IP address or network"),
        ("server:\n  access_log: 1\n", "'server.access_log' must be true or false"),
    ],
)
def test_bad_config_names_the_key_and_the_file(tmp_path: Path, yaml_text: str, named: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path, config)
    assert named in str(refused.value)
    assert str(config) in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path, tmp_path / "absent.yaml")


def test_every_integer_setting_declares_its_minimum() -> None:
    """A new integer setting cannot slip in without a lower bound checked at load."""
    for section in get_type_hints(Settings).values():
        if not dataclasses.is_dataclass(section):
            continue
        types = get_type_hints(section)
        for setting in dataclasses.fields(section):
            if types[setting.name] is int:
                assert "minimum" in setting.metadata, f"{section.__name__}.{setting.name}"


def test_a_setting_at_its_minimum_is_accepted(tmp_path: Path) -> None:
    """The bound is inclusive: 0 disables the unlock cache and rate limit, 60 s is the shortest window."""
    config = tmp_path / "edge.yaml"
    config.write_text(
        "server:\n  unlock_cache_seconds: 0\n  rate_limit_per_second: 0\n"
        "lockout:\n  window_seconds: 60\n"
    )
    settings = load_settings(tmp_path, config)
    assert settings.server.unlock_cache_seconds == 0 and settings.lockout.window_seconds == 60


def test_a_database_url_selects_postgres_and_its_password_file_resolves_under_home(
    tmp_path: Path,
) -> None:
    config = tmp_path / "pg.yaml"
    config.write_text("keystore:\n  url: postgresql://signserv@db/signserv\n  password_file: pw\n")
    settings = load_settings(tmp_path / "home", config)
    assert settings.keystore.url == "postgresql://signserv@db/signserv"
    assert settings.keystore.password_file == tmp_path / "home" / "pw"


def test_trusted_proxies_are_listed_from_a_comma_separated_setting(tmp_path: Path) -> None:
    config = tmp_path / "proxies.yaml"
    config.write_text("server:\n  forwarded_allow_ips: '10.0.0.0/8, 192.0.2.7'\n")
    assert load_settings(tmp_path, config).server.trusted_proxies() == ["10.0.0.0/8", "192.0.2.7"]
    assert load_settings(tmp_path).server.trusted_proxies() == []
