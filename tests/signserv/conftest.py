"""Fixtures for the signserv package: settings for a fresh home and an app over a real keystore."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from signserv.host.config import Settings, load_settings
from signserv.host.home import initialize_home, open_keystore
from signserv.server.app import create_app

from ..conftest import FAST_CONFIG


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for an initialized home with a test-cost argon2id."""
    config = tmp_path / "config.yaml"
    config.write_text(FAST_CONFIG + "server:\n  max_request_bytes: 4096\n")
    loaded = load_settings(tmp_path / "home", config)
    initialize_home(loaded)
    return loaded


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def admin_token(settings: Settings) -> str:
    """Key ``admin`` exists; this is its token."""
    token = "admin-token-0123456789abcdef"
    open_keystore(settings).create_key("admin", token)
    return token


@pytest.fixture(params=["sqlite", "postgres"])
def backend_config(request: pytest.FixtureRequest) -> str:
    """The YAML selecting each storage backend in turn: the SQLite default, then PostgreSQL."""
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("postgres_database").config())
