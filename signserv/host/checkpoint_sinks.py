"""Where signed audit checkpoints go: outside the service's home, to witnesses it does not control.

Three sinks, configured under ``audit_checkpoints`` (README, docs/audit-checkpoints.md): a file
on another volume (one note appended per checkpoint, fsync'ed), syslog (one message per note),
and an HTTP(S) endpoint (a text/plain POST). A sink that fails raises
:class:`CheckpointSinkError`; the writer logs it and the next interval tries again, so a
witness that is away never holds up or fails a request.
"""

from __future__ import annotations

import fcntl
import logging
import logging.handlers
import os
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import requests

from foundation import PRIVATE_FILE_MODE, fsync_path
from signserv.errors import SignservError
from signserv.host.config import AuditCheckpointSettings, syslog_address
from signserv.tke_http import session_for

SYSLOG_IDENT = "signserv-audit-checkpoint: "


class CheckpointSinkError(SignservError):
    """A checkpoint could not be delivered to one sink; the next interval tries again."""


class CheckpointSink(Protocol):
    """One place a checkpoint note is sent to."""

    description: str
    """Where the sink sends, for logs (never a credential)."""

    def send(self, note: str) -> None:
        """Deliver ``note`` durably where the sink can tell, or raise :class:`CheckpointSinkError`."""


class FileCheckpointSink:
    """Appends each note to a file (0600), fsync'ed before :meth:`send` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"file {path}"

    def send(self, note: str) -> None:
        record = note.encode("utf-8")
        try:
            created = not self.path.exists()
            descriptor = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE
            )
            try:
                # Exclusive, so a service and `signserv audit checkpoint` never interleave notes;
                # a POSIX lock, which a worker forked meanwhile does not inherit (flock would be).
                fcntl.lockf(descriptor, fcntl.LOCK_EX)
                if os.write(descriptor, record) != len(record):
                    raise CheckpointSinkError(f"{self.description} took only part of a checkpoint")
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            if created:
                fsync_path(self.path.parent)
        except OSError as exc:
            raise CheckpointSinkError(
                f"cannot append to {self.description}: {exc.strerror}"
            ) from None


class _SysLogHandlerThatRaises(logging.handlers.SysLogHandler):
    """The standard handler, except that a failed send raises instead of printing to stderr."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # logging calls this inside the except block of a failed send


class SyslogCheckpointSink:
    """Sends each note as one syslog message (facility user) to ``address``."""

    def __init__(self, address: str) -> None:
        self._address = syslog_address(address)
        self.description = f"syslog {address}"

    def send(self, note: str) -> None:
        try:
            handler = _SysLogHandlerThatRaises(address=self._address)
        except OSError as exc:
            raise CheckpointSinkError(f"cannot reach {self.description}: {exc.strerror}") from None
        handler.ident = SYSLOG_IDENT
        handler.append_nul = False
        try:
            handler.emit(
                logging.LogRecord("signserv.audit", logging.INFO, __file__, 0, note, None, None)
            )
        except OSError as exc:
            raise CheckpointSinkError(
                f"cannot send to {self.description}: {exc.strerror}"
            ) from None
        finally:
            handler.close()


class HttpCheckpointSink:
    """POSTs each note as text/plain; any answer but 2xx, a timeout or a TLS failure raises."""

    def __init__(self, url: str, ca_file: Path | None, timeout_seconds: int) -> None:
        self._url = url
        self._verify: str | bool = str(ca_file) if ca_file is not None else True
        self._timeout = timeout_seconds
        self._session = session_for("signserv-audit-checkpoint")
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        # Host and path only: a query or user part may carry the witness's credential.
        self.description = f"{parts.scheme}://{parts.hostname}{port}{parts.path}"

    def send(self, note: str) -> None:
        try:
            response = self._session.post(
                self._url,
                data=note.encode("utf-8"),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=(self._timeout, self._timeout),
                verify=self._verify,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise CheckpointSinkError(
                f"cannot send to {self.description}: {type(exc).__name__}"
            ) from None
        if not 200 <= response.status_code < 300:
            raise CheckpointSinkError(
                f"{self.description} answered {response.status_code}, not a 2xx status"
            )


def configured_sinks(settings: AuditCheckpointSettings) -> list[CheckpointSink]:
    """Every sink the settings name, in the order file, syslog, HTTP."""
    sinks: list[CheckpointSink] = []
    if settings.file is not None:
        sinks.append(FileCheckpointSink(settings.file))
    if settings.syslog_address is not None:
        sinks.append(SyslogCheckpointSink(settings.syslog_address))
    if settings.http_url is not None:
        sinks.append(
            HttpCheckpointSink(
                settings.http_url, settings.http_ca_file, settings.http_timeout_seconds
            )
        )
    return sinks
