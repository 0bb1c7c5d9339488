"""A gunicorn application whose workers each build their own Flask app from a factory.

Shared by ``signserv serve`` and ``signserv-tke emulator serve``, so it lives beside both servers
rather than inside either: each decides its own gunicorn settings; both need workers that open
their own files and connections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class FlaskGunicorn(BaseApplication):  # type: ignore[misc]
    """Run ``create_app()`` in every worker under the given gunicorn settings."""

    def __init__(self, create_app: Callable[[], Flask], options: dict[str, Any]) -> None:
        self._create_app = create_app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._create_app()
