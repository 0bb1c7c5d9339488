"""`signserv backup` and `restore`: online snapshots that stay sealed, and verified restores."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from keystore.errors import BackupExists, BackupUnusable, RestoreWouldOverwrite
from keystore.sqlite import SqliteDatabase
from keystore.sqlite.audit_log_end import SqliteAuditLogEnd
from signserv.cli.audit import audit_group
from signserv.cli.keys import keys_group
from signserv.cli.maintenance import backup_command, master_key_group, restore_command
from signserv.client import SigningServiceClient
from signserv.host.audit_log import AUDIT_MAC_PURPOSE, verify_log
from signserv.host.config import Settings, load_settings
from signserv.host.home import AuditLogUnverifiable, initialize_home, open_keystore
from signserv.secret import Secret
from signserv.server.app import create_app

from ...conftest import RunningService, SignservHome, make_home

TOKENS = {"admin-1": "token-of-admin-1-0123456789", "admin-2": "token-of-admin-2-0123456789"}


def invoke(command: click.Command, settings: Settings, *arguments: str) -> Result:
    return CliRunner().invoke(command, list(arguments), obj=settings)


def described_keys(settings: Settings) -> list[dict[str, object]]:
    """`keys list --json`: names, SKIs, states and dates."""
    listed = invoke(keys_group, settings, "list", "--json")
    assert listed.exit_code == 0, listed.output
    described: list[dict[str, object]] = json.loads(listed.output)
    return described


def scalars(settings: Settings) -> dict[str, int]:
    store = open_keystore(settings)
    return {
        name: store.unlock(name, token).signing_key.private_key.private_numbers().private_value
        for name, token in TOKENS.items()
    }


@pytest.fixture
def keyed_settings(settings: Settings) -> Settings:
    store = open_keystore(settings)
    for name, token in TOKENS.items():
        store.create_key(name, token)
    return settings


@pytest.fixture
def backup_file(keyed_settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "keystore-backup.db"
    result = invoke(backup_command, keyed_settings, str(path))
    assert result.exit_code == 0, result.output
    return path


def test_backup_is_private_names_its_master_key_and_holds_no_clear_key(
    keyed_settings: Settings, backup_file: Path
) -> None:
    assert stat.S_IMODE(backup_file.stat().st_mode) == 0o600
    content = backup_file.read_bytes()
    for scalar in scalars(keyed_settings).values():
        assert scalar.to_bytes(66, "big") not in content
    master_key_text = keyed_settings.keystore.master_key_file.read_text().strip()
    again = invoke(backup_command, keyed_settings, str(backup_file.with_name("second.db")))
    assert str(keyed_settings.keystore.master_key_file) in again.output
    assert "2 keys" in again.output and master_key_text not in again.output


def test_backup_never_replaces_a_file(keyed_settings: Settings, backup_file: Path) -> None:
    result = invoke(backup_command, keyed_settings, str(backup_file))
    assert isinstance(result.exception, BackupExists)


def test_backup_wipe_restore_yields_identical_keys(
    keyed_settings: Settings, backup_file: Path, tmp_path: Path
) -> None:
    """The host is lost; the backup and a separate copy of the master key rebuild it."""
    before = (described_keys(keyed_settings), scalars(keyed_settings))
    saved_master_key = tmp_path / "master-key-copy"
    shutil.copy(keyed_settings.keystore.master_key_file, saved_master_key)
    shutil.rmtree(keyed_settings.home)
    refused = invoke(restore_command, keyed_settings, str(backup_file))
    assert "--master-key-file" in str(refused.exception)
    restored = invoke(
        restore_command,
        keyed_settings,
        str(backup_file),
        "--master-key-file",
        str(saved_master_key),
    )
    assert restored.exit_code == 0, restored.output
    assert "restored 2 keys" in restored.output
    assert (described_keys(keyed_settings), scalars(keyed_settings)) == before
    assert stat.S_IMODE(keyed_settings.home.stat().st_mode) == 0o700
    assert keyed_settings.keystore.master_key_file.read_bytes() == saved_master_key.read_bytes()


def test_restore_of_a_deleted_keystore_uses_the_homes_master_key(
    keyed_settings: Settings, backup_file: Path
) -> None:
    before = (described_keys(keyed_settings), scalars(keyed_settings))
    for leftover in keyed_settings.home.glob("keystore.db*"):
        leftover.unlink()
    assert invoke(restore_command, keyed_settings, str(backup_file)).exit_code == 0
    assert (described_keys(keyed_settings), scalars(keyed_settings)) == before


def test_a_backup_made_before_records_had_a_kind_restores_as_software_keys(
    keyed_settings: Settings, backup_file: Path
) -> None:
    """Schema 1 backups stay restorable; the restored file is migrated when opened."""
    before = (described_keys(keyed_settings), scalars(keyed_settings))
    with closing(sqlite3.connect(backup_file)) as database:
        database.execute("ALTER TABLE keys DROP COLUMN kind")
        database.execute("ALTER TABLE keys DROP COLUMN policy")
        database.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
        database.commit()
    assert invoke(restore_command, keyed_settings, str(backup_file), "--force").exit_code == 0
    assert (described_keys(keyed_settings), scalars(keyed_settings)) == before


def test_restore_refuses_to_overwrite_without_force(
    keyed_settings: Settings, backup_file: Path
) -> None:
    open_keystore(keyed_settings).create_key("after-backup", "token-after-backup-01234")
    refused = invoke(restore_command, keyed_settings, str(backup_file))
    assert isinstance(refused.exception, RestoreWouldOverwrite)
    assert "--force" in str(refused.exception)
    assert "after-backup" in [key["name"] for key in described_keys(keyed_settings)]
    forced = invoke(restore_command, keyed_settings, str(backup_file), "--force")
    assert forced.exit_code == 0, forced.output
    assert "restart" in forced.output
    assert [key["name"] for key in described_keys(keyed_settings)] == sorted(TOKENS)


def test_backup_from_before_a_rotation_needs_the_old_master_key(
    keyed_settings: Settings, backup_file: Path
) -> None:
    before = scalars(keyed_settings)
    assert invoke(master_key_group, keyed_settings, "rotate").exit_code == 0
    old_key = keyed_settings.keystore.master_key_file.with_name("master.key.old")
    refused = invoke(restore_command, keyed_settings, str(backup_file), "--force")
    assert isinstance(refused.exception, BackupUnusable)
    assert "made under another master key" in str(refused.exception)
    restored = invoke(
        restore_command,
        keyed_settings,
        str(backup_file),
        "--force",
        "--master-key-file",
        str(old_key),
    )
    assert restored.exit_code == 0, restored.output
    assert scalars(keyed_settings) == before, "re-sealed under the current master key"


def test_damaged_backup_is_refused_before_anything_changes(
    keyed_settings: Settings, backup_file: Path
) -> None:
    backup_file.write_bytes(backup_file.read_bytes()[:5000])
    before = described_keys(keyed_settings)
    refused = invoke(restore_command, keyed_settings, str(backup_file), "--force")
    assert isinstance(refused.exception, BackupUnusable)
    assert described_keys(keyed_settings) == before


def test_backup_of_a_serving_keystore_restores_into_a_new_home_that_signs(
    tmp_path: Path, start_signserv: Callable[..., RunningService]
) -> None:
    """Online backup while the service runs; a new host restores it and signs under the same SKI."""
    original = make_home(tmp_path / "original")
    token = Secret(original.create_key("admin"))
    service = start_signserv(original)
    with SigningServiceClient(service.url) as client:
        ski = client.public_key("admin", token).ski_hex()
        client.sign("admin", token, b"before the backup")
        backup = tmp_path / "online-backup.db"
        original_settings = load_settings(original.home, original.config)
        assert invoke(backup_command, original_settings, str(backup)).exit_code == 0
        client.sign("admin", token, b"during and after the backup")
    rebuilt = tmp_path / "rebuilt"
    rebuilt_settings = load_settings(rebuilt / "home", original.config)  # nothing there yet
    master_key_copy = original.home / "master.key"
    restored = invoke(
        restore_command, rebuilt_settings, str(backup), "--master-key-file", str(master_key_copy)
    )
    assert restored.exit_code == 0, restored.output
    rebuilt_service = start_signserv(SignservHome(home=rebuilt / "home", config=original.config))
    with SigningServiceClient(rebuilt_service.url) as client:
        assert client.public_key("admin", token).ski_hex() == ski
        client.sign("admin", token, b"on the rebuilt host")


def test_backup_and_restore_through_the_installed_command(tmp_path: Path) -> None:
    home = make_home(tmp_path / "signserv")
    token = home.create_key("admin")
    backup = tmp_path / "backup.db"
    assert "wrote backup" in home.run("backup", str(backup)).stdout
    refused = home.run("restore", str(backup), check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("error: a keystore exists")
    assert "restored 1 key from" in home.run("restore", str(backup), "--force").stdout
    settings = load_settings(home.home, home.config)
    open_keystore(settings).unlock("admin", token)


def _sign_once(settings: Settings) -> None:
    """One audited request through the application, as a first `serve` would write."""
    client = create_app(settings).test_client()
    name, token = next(iter(TOKENS.items()))
    response = client.get(f"/keys/{name}", headers={"Authorization": token})
    assert response.status_code == 200


def test_a_backup_made_before_the_first_serve_leaves_the_audit_log_verifiable(
    keyed_settings: Settings, backup_file: Path
) -> None:
    """The audit key exists from `init` on, so the backup carries the key the log is chained under."""
    _sign_once(keyed_settings)
    assert invoke(restore_command, keyed_settings, str(backup_file), "--force").exit_code == 0
    _sign_once(keyed_settings)
    audit_key = open_keystore(keyed_settings).server_secret(AUDIT_MAC_PURPOSE)
    assert verify_log(keyed_settings.audit.path, audit_key).records == 2


def test_a_restore_keeps_the_homes_audit_key_over_a_backup_without_one(
    keyed_settings: Settings, backup_file: Path
) -> None:
    """A backup written by an earlier version, before its first serve, holds no audit key."""
    with closing(sqlite3.connect(backup_file)) as database, database:
        database.execute("DELETE FROM meta WHERE name LIKE 'server_secret:%'")
    _sign_once(keyed_settings)
    assert invoke(restore_command, keyed_settings, str(backup_file), "--force").exit_code == 0
    audit_key = open_keystore(keyed_settings).server_secret(AUDIT_MAC_PURPOSE)
    assert verify_log(keyed_settings.audit.path, audit_key).records == 1


def test_a_token_revoked_after_a_restore_does_not_sign_from_a_workers_cache(
    keyed_settings: Settings, backup_file: Path
) -> None:
    """The restore brings generation 1 back; the next rotation must not match a cached generation 2."""
    name, backup_token = next(iter(TOKENS.items()))
    cached_token, current_token = "cached-token-0123456789ab", "current-token-0123456789ab"
    client = create_app(keyed_settings).test_client()
    open_keystore(keyed_settings).rotate_token(name, backup_token, cached_token)
    assert client.get(f"/keys/{name}", headers={"Authorization": cached_token}).status_code == 200
    assert invoke(restore_command, keyed_settings, str(backup_file), "--force").exit_code == 0
    open_keystore(keyed_settings).rotate_token(name, backup_token, current_token)
    assert client.get(f"/keys/{name}", headers={"Authorization": cached_token}).status_code == 401
    assert client.get(f"/keys/{name}", headers={"Authorization": current_token}).status_code == 200


def _rebuilt_home(tmp_path: Path, original: Settings) -> Settings:
    """A new host's home after `init` (fresh master key and audit keys), same config."""
    rebuilt = load_settings(tmp_path / "rebuilt-home", tmp_path / "config.yaml")
    initialize_home(rebuilt)
    assert rebuilt.audit.path != original.audit.path
    return rebuilt


def test_a_restore_keeps_the_backups_audit_key_when_the_log_was_written_under_it(
    keyed_settings: Settings, backup_file: Path, tmp_path: Path
) -> None:
    """A rebuilt host: `init` made fresh audit keys, the old log is copied back, the backup is
    restored; the restored keystore holds the key the log verifies under."""
    _sign_once(keyed_settings)
    rebuilt = _rebuilt_home(tmp_path, keyed_settings)
    shutil.copyfile(keyed_settings.audit.path, rebuilt.audit.path)
    master_key = str(keyed_settings.keystore.master_key_file)
    restored = invoke(
        restore_command, rebuilt, str(backup_file), "--force", "--master-key-file", master_key
    )
    assert restored.exit_code == 0, restored.output
    verified = CliRunner().invoke(audit_group, ["verify"], obj=rebuilt)
    assert verified.exit_code == 0, verified.output
    assert "1 records" in verified.output
    _sign_once(rebuilt)
    audit_key = open_keystore(rebuilt).server_secret(AUDIT_MAC_PURPOSE)
    assert verify_log(rebuilt.audit.path, audit_key).records == 2


def test_a_restore_is_refused_when_the_log_verifies_under_neither_audit_key(
    keyed_settings: Settings, backup_file: Path, tmp_path: Path
) -> None:
    """Hostile: the home's log was written under a third keystore's key; nothing changes."""
    stranger = _rebuilt_home(tmp_path, keyed_settings)
    _sign_once_in(stranger)
    shutil.copyfile(stranger.audit.path, keyed_settings.audit.path)
    before = described_keys(keyed_settings)
    refused = invoke(restore_command, keyed_settings, str(backup_file), "--force")
    assert isinstance(refused.exception, AuditLogUnverifiable)
    assert "verifies under neither the backup's audit key nor this home's" in str(refused.exception)
    assert str(keyed_settings.audit.path) in str(refused.exception)
    assert described_keys(keyed_settings) == before


def _sign_once_in(settings: Settings) -> None:
    """One audited request, for a key made here, in ``settings``'s home."""
    open_keystore(settings).create_key("stranger", "token-of-a-stranger-0123456789")
    response = (
        create_app(settings)
        .test_client()
        .get("/keys/stranger", headers={"Authorization": "token-of-a-stranger-0123456789"})
    )
    assert response.status_code == 200


def test_a_restore_keeps_where_the_homes_audit_log_ended_not_the_backups(
    keyed_settings: Settings, tmp_path: Path
) -> None:
    """The log outlives the restore: its recorded end is the home's, in place or on a new host."""
    _sign_once(keyed_settings)
    backup = tmp_path / "after-one-record.db"
    assert invoke(backup_command, keyed_settings, str(backup)).exit_code == 0
    _sign_once(keyed_settings)
    recorded = SqliteAuditLogEnd(SqliteDatabase(keyed_settings.keystore.path))
    before = recorded.recorded()
    assert before is not None and before.records == 2
    assert invoke(restore_command, keyed_settings, str(backup), "--force").exit_code == 0
    assert recorded.recorded() == before
    rebuilt = _rebuilt_home(tmp_path, keyed_settings)  # a new host: no log, no recorded end
    master_key = str(keyed_settings.keystore.master_key_file)
    restored = invoke(
        restore_command, rebuilt, str(backup), "--force", "--master-key-file", master_key
    )
    assert restored.exit_code == 0, restored.output
    assert SqliteAuditLogEnd(SqliteDatabase(rebuilt.keystore.path)).recorded() is None
    _sign_once(rebuilt)  # a new log starts at record 1
