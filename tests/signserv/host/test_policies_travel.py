"""A key's policy travels with its record: master-key rotation, backup and restore, and migration
between SQLite and PostgreSQL, still bound under the master key at the other end."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from signserv.cli.maintenance import backup_command, master_key_group, restore_command
from signserv.host.config import Settings, load_settings
from signserv.host.home import initialize_home, open_keystore
from signserv.host.key_policy import KeyPolicy
from signserv.tke.wire.signed_input import InputKind

from ...conftest import FAST_CONFIG, PostgresDatabaseUrl, SignservHome

TOKEN = "admin-token-0123456789abcdef"
POLICY = KeyPolicy.build({InputKind.ADMINISTRATORS}, modules={"93AABC12"}, domains={3})


def _settings(directory: Path, extra_config: str = "") -> Settings:
    config = directory / "config.yaml"
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(FAST_CONFIG + extra_config)
    return load_settings(directory / "home", config)


@pytest.fixture
def source(settings: Settings) -> Settings:
    """A home whose key ``admin`` has :data:`POLICY` and whose key ``free`` has none."""
    store = open_keystore(settings)
    store.create_key("admin", TOKEN)
    store.create_key("free", TOKEN)
    store.set_policy("admin", POLICY.to_bytes())
    return settings


def _assert_policies_kept(settings: Settings) -> None:
    store = open_keystore(settings)
    try:
        assert store.policy("admin") == POLICY.to_bytes()
        assert store.unlock("admin", TOKEN).policy == POLICY.to_bytes()
        assert store.policy("free") is None
        assert store.unlock("free", TOKEN).policy is None
    finally:
        store.close()


def _invoke(command, settings: Settings, *arguments: str) -> None:
    result = CliRunner().invoke(command, list(arguments), obj=settings)
    assert result.exit_code == 0, result.output


def test_master_key_rotation_carries_policies(source: Settings) -> None:
    _invoke(master_key_group, source, "rotate")
    _assert_policies_kept(source)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """An empty home in each backend in turn."""
    if request.param == "sqlite":
        return _settings(tmp_path / "target")
    database: PostgresDatabaseUrl = request.getfixturevalue("postgres_database")
    return _settings(tmp_path / "target", database.config())


def test_backup_and_restore_carry_policies(
    source: Settings, target: Settings, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    _invoke(backup_command, source, str(backup))
    initialize_home(target)
    _invoke(
        restore_command,
        target,
        str(backup),
        "--master-key-file",
        str(source.keystore.master_key_file),
        "--force",
    )
    _assert_policies_kept(target)


def test_migrate_carries_policies(source: Settings, target: Settings) -> None:
    home = SignservHome(home=source.home, config=source.home.parent / "config.yaml")
    home.run("migrate", "--to-config", str(target.home.parent / "config.yaml"),
             "--to-home", str(target.home))  # fmt: skip
    _assert_policies_kept(target)
