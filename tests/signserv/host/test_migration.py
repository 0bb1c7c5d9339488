"""`signserv migrate` between two SQLite homes (the PostgreSQL round trip is in tests/signserv/replicas)."""

from __future__ import annotations

from pathlib import Path

from ...conftest import SignservHome, make_home


def test_a_home_that_never_served_migrates_with_an_empty_audit_chain(tmp_path: Path) -> None:
    """No request yet, so no audit log: the keys move and the target's chain starts empty."""
    source = make_home(tmp_path / "source")
    source.create_key("unused")
    assert not (source.home / "audit.log").exists()
    target_config = tmp_path / "target.yaml"
    target_config.write_text(source.config.read_text())
    moved = source.run(
        "migrate", "--to-config", str(target_config), "--to-home", str(tmp_path / "target")
    )
    assert "copied 1 key(s) and 0 audit record(s)" in moved.stdout
    target = SignservHome(home=tmp_path / "target", config=target_config)
    assert [line.split()[0] for line in target.run("keys", "list").stdout.splitlines()[1:]] == [
        "unused"
    ]


def test_an_unreadable_source_audit_log_stops_the_migration(tmp_path: Path) -> None:
    """A log that exists must verify: a directory in its place is named, nothing is copied."""
    source = make_home(tmp_path / "source")
    source.create_key("kept")
    (source.home / "audit.log").mkdir()
    target_config = tmp_path / "target.yaml"
    target_config.write_text(source.config.read_text())
    refused = source.run(
        "migrate", "--to-config", str(target_config), "--to-home", str(tmp_path / "target"),
        check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "audit log" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "target" / "keystore.db").exists()
