"""Running the app under gunicorn: the one place its configuration is decided.

`signserv serve` and the Dockerfile both come here. The keystore is opened once in the master
process before any worker starts, so a missing master key, a damaged keystore or an audit log
that no longer holds its recorded last record stops the service with a clear message instead
of a crash loop. A worker started later (gunicorn replaces one that died or hung) while a
shared database is unreachable waits for it rather than fail to boot: gunicorn stops the whole
service when a worker fails to boot.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.util import parse_address

from keystore import KeystoreCorrupt, KeystoreUnavailable
from signserv.errors import SignservError
from signserv.gunicorn_application import FlaskGunicorn
from signserv.host.audit_checkpoints import PeriodicCheckpoints, open_checkpoint_writer
from signserv.host.config import Settings
from signserv.host.home import check_audit_log_continues, open_keystore
from signserv.server.app import create_app
from signserv.server.guarded_worker import ReadDeadlines, guarded_worker_class
from signserv.server.metrics import forget_worker, prepare_multiprocess_directory

# Off unless server.access_log: the audit log already records every request that names a key.
# No query string (a token sent as ?token= must not land in a log), no %(u)s (it would show a
# Basic credential) and no headers: access lines carry no secrets.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)sB %(M)sms rid=%({x-request-id}o)s'
# Chosen by `signserv bench` (README, Performance): gthread workers keep connections alive, where
# sync workers close every one, and serve warm requests on free threads while others wait for
# argon2id, so a flood of wrong tokens no longer queues every client behind it. argon2id runs
# stay bounded by kdf.max_concurrent per worker whatever the thread count.
WORKER_THREADS = 16
KEEPALIVE_SECONDS = 5
# Open connections per worker (gunicorn's default is 1,000). Idle ones hold a descriptor, not a
# thread (signserv.server.guarded_worker), so 1,000 idle connections from one address must not
# make a worker stop accepting.
WORKER_CONNECTIONS = 4096


def tls_options(settings: Settings) -> dict[str, Any]:
    """gunicorn's TLS settings: server certificate, and client certificates when a CA is set
    (required, or optional when keys bound to certificates are checked one by one)."""
    tls = settings.tls
    if not tls.enabled:
        return {}
    options: dict[str, Any] = {"certfile": str(tls.certfile), "keyfile": str(tls.keyfile)}
    if tls.client_ca_file is not None:
        required = tls.client_certificates == "required"
        options.update(
            ca_certs=str(tls.client_ca_file),
            cert_reqs=ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL,
        )
    return options


def gunicorn_options(
    settings: Settings, bind: str | None, workers: int | None, deadlines: ReadDeadlines
) -> dict[str, Any]:
    """gunicorn settings derived from ours; the command line may override bind and workers."""
    proxy_senders = settings.server.proxy_protocol_senders()
    return {
        **tls_options(settings),
        "bind": [bind or settings.server.bind],
        "workers": workers or settings.server.workers,
        "worker_class": guarded_worker_class(
            deadlines,
            settings.server.connections_per_address,
            proxy_senders,
        ),
        "threads": WORKER_THREADS,
        "worker_connections": WORKER_CONNECTIONS,
        "keepalive": KEEPALIVE_SECONDS,
        "timeout": settings.server.timeout_seconds,
        "graceful_timeout": settings.server.timeout_seconds,
        "accesslog": "-" if settings.server.access_log else None,
        "errorlog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "preload_app": False,
        "proc_name": "signserv",
        "limit_request_field_size": 8190,
        # Trust no peer's forwarding headers unless configured (gunicorn trusts loopback), and
        # let none remap paths: a SCRIPT_NAME or PATH_INFO header is dropped from every peer.
        "forwarded_allow_ips": ",".join(settings.server.trusted_proxies()),
        "forwarder_headers": "",
        # The client address behind a load balancer (README, "Several replicas"): only the
        # configured senders may prefix a connection with a PROXY v1 line; gunicorn sets
        # REMOTE_ADDR from it. v1 only: v2's binary signature starts with the blank line the
        # guarded worker reads as the end of a request head.
        "proxy_protocol": "v1" if proxy_senders else "off",
        "proxy_allow_ips": ",".join(proxy_senders),
        # gunicorn 27's runtime control socket is a management surface we do not offer.
        "control_socket_disable": True,
        "child_exit": lambda _server, worker: forget_worker(worker.pid),
    }


class BindError(SignservError):
    """The address to serve on cannot be listened on (in use, not ours, not a valid address)."""


def _bind_refused(bind: str, reason: str) -> BindError:
    return BindError(
        f"cannot listen on {bind}: {reason}; choose another address with --bind HOST:PORT "
        "(or server.bind in the config file)"
    )


def check_bind_address(bind: str) -> None:
    """Raise :class:`BindError` unless a TCP listener could bind ``bind`` right now.

    Left to itself, gunicorn retries a busy port for five seconds and exits with only its own
    log lines; this names the problem and the option that fixes it before anything starts.
    Unix sockets and inherited descriptors are left to gunicorn.
    """
    try:
        address = parse_address(bind)
    except RuntimeError as exc:
        raise _bind_refused(bind, str(exc)) from None
    if not isinstance(address, tuple):
        return
    host, port = address
    try:
        [(family, kind, protocol, _, sockaddr), *_] = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise _bind_refused(bind, f"unknown host {host!r} ({exc.strerror})") from None
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn's own socket
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise _bind_refused(bind, "the address is already in use") from None
            raise _bind_refused(bind, str(exc.strerror).lower()) from None


def allow_descriptors_up_to_the_hard_limit() -> None:
    """Idle connections cost a descriptor each (not a thread): let the workers hold as many as
    the system allows, rather than fail to accept at the common soft limit of 1024."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_logger = logging.getLogger(__name__)
STORAGE_RETRY_MAX_SECONDS = 5.0


def app_once_storage_answers(build: Callable[[], Flask]) -> Flask:
    """``build()``, retried while the keystore is unreachable (a database restarting).

    Only unavailability is waited out: a damaged keystore still fails the worker's boot, which
    stops the service, as it should. While a worker waits it answers nothing; the other workers
    go on, and gunicorn replaces the waiting one if it outlives the worker timeout.
    """
    delay = 0.25
    while True:
        try:
            return build()
        except KeystoreCorrupt:
            raise
        except KeystoreUnavailable as exc:
            _logger.warning("worker %d waits for the keystore: %s", os.getpid(), exc)
            time.sleep(delay)
            delay = min(delay * 2, STORAGE_RETRY_MAX_SECONDS)


def open_keystore_once_reachable(settings: Settings) -> None:
    """Open and close the keystore; a database not reachable yet is waited for, within bounds.

    Replicas and their database often start together (deploy/replicated): a replica up first
    waits ``keystore.startup_wait_seconds`` for it, saying what it waits for. A damaged
    keystore, the wrong master key or a SQLite keystore fail at once, as before.
    """
    deadline = time.monotonic() + settings.keystore.startup_wait_seconds
    while True:
        try:
            open_keystore(settings).close()
            return
        except KeystoreCorrupt:
            raise
        except KeystoreUnavailable as exc:
            remaining = deadline - time.monotonic()
            if settings.keystore.url is None or remaining <= 0:
                raise
            _logger.warning("waiting up to %d s more for the keystore: %s", remaining, exc)
            time.sleep(min(STORAGE_RETRY_MAX_SECONDS, remaining))


def _take_checkpoints_in_the_arbiter(
    settings: Settings, options: dict[str, Any], on_listening: Callable[[], None]
) -> None:
    """Checkpoints from a thread of gunicorn's arbiter: every interval, and once the workers
    have stopped (``on_exit``), so the last one covers every record. Never in a request."""
    checkpoints = PeriodicCheckpoints(
        open_checkpoint_writer(settings), settings.audit_checkpoints.interval_seconds
    )

    def when_ready(_arbiter: object) -> None:
        checkpoints.start()
        on_listening()

    options["when_ready"] = when_ready
    options["on_exit"] = lambda _arbiter: checkpoints.stop()


def serve(
    settings: Settings,
    bind: str | None = None,
    workers: int | None = None,
    on_listening: Callable[[], None] = lambda: None,
) -> None:
    """Check the keystore and the address, then run gunicorn in the foreground until stopped.

    ``on_listening`` is called once gunicorn listens, before its workers start.
    """
    open_keystore_once_reachable(settings)
    check_audit_log_continues(settings)
    allow_descriptors_up_to_the_hard_limit()
    deadlines = ReadDeadlines(
        settings.server.request_read_seconds, settings.server.requests_read_per_address
    )
    options = gunicorn_options(settings, bind, workers, deadlines)
    for address in options["bind"]:
        check_bind_address(address)
    prepare_multiprocess_directory(settings.home / "metrics")
    options["when_ready"] = lambda _arbiter: on_listening()
    if settings.audit_checkpoints.enabled:
        _take_checkpoints_in_the_arbiter(settings, options, on_listening)
    # Each worker builds its own app (own SQLite connections).
    FlaskGunicorn(
        lambda: app_once_storage_answers(
            lambda: create_app(settings, request_arrived=deadlines.arrived)
        ),
        options,
    ).run()
