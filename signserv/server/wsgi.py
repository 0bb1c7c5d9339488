"""Entry point for running signserv under another WSGI server: ``signserv.server.wsgi:create_wsgi_app()``.

Settings come from $SIGNSERV_HOME and $SIGNSERV_CONFIG, as for the CLI. `signserv serve` is
the supported way to run; this exists for platforms that start the WSGI server themselves.
"""

from __future__ import annotations

from flask import Flask

from signserv.host.config import load_settings
from signserv.host.core_dumps import forbid_core_dumps
from signserv.server.app import create_app


def create_wsgi_app() -> Flask:
    """The application for the environment's settings, in a process that dumps no core."""
    forbid_core_dumps()
    return create_app(load_settings())
