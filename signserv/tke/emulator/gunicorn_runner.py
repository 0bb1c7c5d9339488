"""Running the emulator's TKE API under gunicorn (``signserv-tke emulator serve``).

Every worker opens the same state file; the file's lock lets one command at a time change
it, and each change replaces the file atomically, so several workers and clients are safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signserv.gunicorn_application import FlaskGunicorn
from signserv.tke.emulator.http_api import EmulatorServerSettings, create_emulator_app

# No headers and no %(u)s: access lines never carry the access token.
ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)sB %(M)sms'
WORKER_THREADS = 4
REQUEST_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Listener:
    """Where the TKE API listens, and the TLS certificate and key when it speaks https."""

    bind: str
    workers: int
    certfile: Path | None = None
    keyfile: Path | None = None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{self.bind}"


def gunicorn_options(listener: Listener) -> dict[str, Any]:
    """gunicorn settings for the emulator: threaded workers, TLS when certificates are given."""
    tls = (
        {"certfile": str(listener.certfile), "keyfile": str(listener.keyfile)}
        if listener.certfile
        else {}
    )
    return {
        **tls,
        "bind": [listener.bind],
        "workers": listener.workers,
        "worker_class": "gthread",
        "threads": WORKER_THREADS,
        "timeout": REQUEST_TIMEOUT_SECONDS,
        "graceful_timeout": REQUEST_TIMEOUT_SECONDS,
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "preload_app": False,
        "proc_name": "signserv-tke-emulator",
        "control_socket_disable": True,
    }


def serve_emulator(settings: EmulatorServerSettings, listener: Listener) -> None:
    """Run gunicorn in the foreground until it is stopped."""
    FlaskGunicorn(lambda: create_emulator_app(settings), gunicorn_options(listener)).run()
