"""Running the app under gunicorn: the one place its configuration is decided.

`signserv serve` and the Dockerfile both come here. The keystore is opened once in the master
process before any worker starts, so a missing master key or a damaged keystore stops the
service with a clear message instead of a crash loop.
"""

from __future__ import annotations

import ssl
from typing import Any

from signserv.gunicorn_application import FlaskGunicorn
from signserv.host.config import Settings
from signserv.host.home import open_keystore
from signserv.server.app import create_app
from signserv.server.metrics import forget_worker, prepare_multiprocess_directory

# No %(u)s (it would show a Basic credential) and no headers: access lines carry no secrets.
ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)sB %(M)sms rid=%({x-request-id}o)s'
# Chosen by `signserv bench` (README, Performance): gthread workers keep connections alive, where
# sync workers close every one, and serve warm requests on free threads while others wait for
# argon2id, so a flood of wrong tokens no longer queues every client behind it. argon2id runs
# stay bounded by kdf.max_concurrent per worker whatever the thread count.
WORKER_THREADS = 16
KEEPALIVE_SECONDS = 5


def tls_options(settings: Settings) -> dict[str, Any]:
    """gunicorn's TLS settings: server certificate, and client certificates when a CA is set."""
    tls = settings.tls
    if not tls.enabled:
        return {}
    options: dict[str, Any] = {"certfile": str(tls.certfile), "keyfile": str(tls.keyfile)}
    if tls.client_ca_file is not None:
        options.update(ca_certs=str(tls.client_ca_file), cert_reqs=ssl.CERT_REQUIRED)
    return options


def gunicorn_options(settings: Settings, bind: str | None, workers: int | None) -> dict[str, Any]:
    """gunicorn settings derived from ours; the command line may override bind and workers."""
    return {
        **tls_options(settings),
        "bind": [bind or settings.server.bind],
        "workers": workers or settings.server.workers,
        "worker_class": "gthread",
        "threads": WORKER_THREADS,
        "keepalive": KEEPALIVE_SECONDS,
        "timeout": settings.server.timeout_seconds,
        "graceful_timeout": settings.server.timeout_seconds,
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "preload_app": False,
        "proc_name": "signserv",
        "limit_request_field_size": 8190,
        # gunicorn 27's runtime control socket is a management surface we do not offer.
        "control_socket_disable": True,
        "child_exit": lambda _server, worker: forget_worker(worker.pid),
    }


def serve(settings: Settings, bind: str | None = None, workers: int | None = None) -> None:
    """Check the keystore, then run gunicorn in the foreground until it is stopped."""
    open_keystore(settings).close()
    prepare_multiprocess_directory(settings.home / "metrics")
    # Each worker builds its own app (own SQLite connections).
    FlaskGunicorn(lambda: create_app(settings), gunicorn_options(settings, bind, workers)).run()
