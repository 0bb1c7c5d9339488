"""Entry point for running signserv under another WSGI server: ``signserv.wsgi:create_wsgi_app()``.

Settings come from $SIGNSERV_HOME and $SIGNSERV_CONFIG, as for the CLI. `signserv serve` is
the supported way to run; this exists for platforms that start the WSGI server themselves.
"""

from __future__ import annotations

from flask import Flask

from signserv.app import create_app
from signserv.config import load_settings


def create_wsgi_app() -> Flask:
    """The application for the environment's settings."""
    return create_app(load_settings())
