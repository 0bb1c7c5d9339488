"""Audit checkpoints on the host: the key as a server secret, the sinks, the periodic writer.

Syslog and HTTP(S) sinks are tested against listeners this module starts on 127.0.0.1 (free
ports) and stops; the checkpoint key must survive master-key rotation, backup and restore.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keystore.audit_checkpoint import CheckpointVerifier, split_notes
from signserv.host.audit_checkpoints import (
    CheckpointWriter,
    PeriodicCheckpoints,
    checkpoint_signer,
)
from signserv.host.audit_log import AUDIT_CHECKPOINT_PURPOSE, AUDIT_MAC_PURPOSE
from signserv.host.checkpoint_sinks import (
    SYSLOG_IDENT,
    CheckpointSink,
    CheckpointSinkError,
    FileCheckpointSink,
    HttpCheckpointSink,
    SyslogCheckpointSink,
)
from signserv.host.config import ConfigError, Settings, load_settings
from signserv.host.home import (
    back_up_keystore,
    open_audit_chain,
    open_keystore,
    restore_keystore,
    rotate_home_master_key,
)

from ...conftest import free_port
from ...tls_certificates import write_self_signed_localhost


def verifier_of(settings: Settings) -> CheckpointVerifier:
    return checkpoint_signer(settings, open_keystore(settings)).verifier


def writer_to(settings: Settings, *sinks: CheckpointSink) -> CheckpointWriter:
    """A writer of the home's checkpoints to ``sinks`` (instead of the configured ones)."""
    store = open_keystore(settings)
    mac_key = store.server_secret(AUDIT_MAC_PURPOSE)
    return CheckpointWriter(
        checkpoint_signer(settings, store), open_audit_chain(settings, mac_key), sinks
    )


# --- the checkpoint key ---------------------------------------------------------------------


def test_init_makes_the_checkpoint_key_so_a_first_backup_carries_it(settings: Settings) -> None:
    assert AUDIT_CHECKPOINT_PURPOSE in open_keystore(settings).records.snapshot().server_secrets


def test_the_checkpoint_key_survives_a_master_key_rotation(settings: Settings) -> None:
    before = verifier_of(settings)
    rotate_home_master_key(settings)
    assert verifier_of(settings) == before


def test_the_checkpoint_key_survives_backup_and_restore_onto_a_rebuilt_host(
    settings: Settings, tmp_path: Path
) -> None:
    before = verifier_of(settings)
    backup = tmp_path / "backup.db"
    back_up_keystore(settings, backup)
    restore_keystore(settings, backup, None, overwrite=True)
    assert verifier_of(settings) == before
    rebuilt = load_settings(tmp_path / "rebuilt", settings.home.parent / "config.yaml")
    restore_keystore(rebuilt, backup, settings.keystore.master_key_file, overwrite=False)
    assert verifier_of(rebuilt) == before


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  file: relative/checkpoints.txt\n", "must be an absolute path"),
        ("  syslog_address: no-port\n", "host:port"),
        ("  http_url: ftp://witness.example/\n", "http:// or https://"),
        ("  http_ca_file: ca.pem\n", "needs 'audit_checkpoints.http_url'"),
        ("  origin: two words\n", "without spaces"),
        ("  interval_seconds: 0\n", "at least 1"),
    ],
    ids=[
        "relative_file",
        "syslog_without_port",
        "not_http",
        "ca_without_url",
        "spaced_origin",
        "zero",
    ],
)
def test_a_wrong_checkpoint_setting_is_named(tmp_path: Path, section: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("audit_checkpoints:\n" + section)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path / "home", config)


def test_a_checkpoint_file_inside_the_home_is_refused(tmp_path: Path) -> None:
    """A checkpoint kept beside the log is lost or rolled back with it."""
    config = tmp_path / "config.yaml"
    config.write_text(f"audit_checkpoints:\n  file: {tmp_path / 'home' / 'sub' / 'cp.txt'}\n")
    with pytest.raises(ConfigError, match="inside the service's home"):
        load_settings(tmp_path / "home", config)


# --- sinks ----------------------------------------------------------------------------------


def test_the_file_sink_appends_one_private_note_per_checkpoint(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "witness" / "checkpoints.txt"
    path.parent.mkdir()
    writer = writer_to(settings, FileCheckpointSink(path))
    notes = [writer.write(), writer.write()]
    assert path.read_text() == "".join(notes)
    assert path.stat().st_mode & 0o777 == 0o600
    verifier = verifier_of(settings)
    assert [verifier.open(note).records for note in split_notes(path.read_text())] == [0, 0]


def test_the_syslog_sink_sends_the_note_in_one_datagram(settings: Settings) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(10)
        port = listener.getsockname()[1]
        note = writer_to(settings, SyslogCheckpointSink(f"127.0.0.1:{port}")).write()
        message = listener.recv(65536).decode("utf-8")
    priority, _, text = message.partition(">")
    assert priority == "<14"  # facility user, level info
    assert text == SYSLOG_IDENT + note
    assert verifier_of(settings).open(text.removeprefix(SYSLOG_IDENT)).records == 0


@dataclass
class Witness:
    """An HTTP(S) endpoint on 127.0.0.1 that records what is POSTed to it."""

    url: str
    received: list[tuple[str, bytes]] = field(default_factory=list)
    status: int = 204


@contextlib.contextmanager
def running_witness(scheme: str, tmp_path: Path) -> Iterator[Witness]:
    """A witness over ``scheme``; over https its self-signed certificate is ``tmp_path/ca.pem``."""
    port = free_port()
    witness = Witness(url=f"{scheme}://127.0.0.1:{port}/checkpoints")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            witness.received.append((self.headers["Content-Type"], self.rfile.read(length)))
            self.send_response(witness.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if scheme == "https":
        certificate, key = write_self_signed_localhost(tmp_path, "ca")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield witness
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(params=["http", "https"])
def witness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Witness]:
    """A witness over plain HTTP, then over HTTPS with a certificate from ``ca.pem``."""
    with running_witness(request.param, tmp_path) as started:
        yield started


def _http_sink(witness: Witness, tmp_path: Path) -> HttpCheckpointSink:
    ca_file = tmp_path / "ca.pem" if witness.url.startswith("https") else None
    return HttpCheckpointSink(witness.url, ca_file, timeout_seconds=5)


def test_the_http_sink_posts_the_note_as_text(
    settings: Settings, witness: Witness, tmp_path: Path
) -> None:
    note = writer_to(settings, _http_sink(witness, tmp_path)).write()
    assert witness.received == [("text/plain; charset=utf-8", note.encode("utf-8"))]


def test_an_https_witness_whose_certificate_is_not_trusted_gets_nothing(tmp_path: Path) -> None:
    with running_witness("https", tmp_path) as witness:
        sink = HttpCheckpointSink(witness.url, ca_file=None, timeout_seconds=5)
        with pytest.raises(CheckpointSinkError, match="SSLError"):
            sink.send("note\n")
    assert witness.received == []


def test_a_failing_witness_is_logged_and_the_other_sinks_still_get_the_checkpoint(
    settings: Settings, witness: Witness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    witness.status = 500
    unreachable = HttpCheckpointSink(f"http://127.0.0.1:{free_port()}/x?token=s3cret", None, 5)
    path = tmp_path / "checkpoints.txt"
    writer = writer_to(
        settings, _http_sink(witness, tmp_path), unreachable, FileCheckpointSink(path)
    )
    with caplog.at_level(logging.WARNING):
        note = writer.write()
    assert path.read_text() == note
    assert "answered 500" in caplog.text and "ConnectionError" in caplog.text
    assert "s3cret" not in caplog.text


def test_periodic_checkpoints_keep_coming_and_stop_writes_a_last_one(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints.txt"
    checkpoints = PeriodicCheckpoints(writer_to(settings, FileCheckpointSink(path)), interval=0.05)
    checkpoints.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _notes_in(path) < 3:
        time.sleep(0.05)  # polls the sink file; the thread writes every 0.05 s
    written = _notes_in(path)
    assert written >= 3
    checkpoints.stop()
    assert _notes_in(path) >= written + 1


def _notes_in(path: Path) -> int:
    return len(list(split_notes(path.read_text()))) if path.exists() else 0


def test_the_checkpoint_signer_never_shows_its_seed(settings: Settings) -> None:
    seed = open_keystore(settings).server_secret(AUDIT_CHECKPOINT_PURPOSE)
    signer = checkpoint_signer(settings, open_keystore(settings))
    assert seed.hex() not in repr(signer) and repr(seed) not in repr(signer)
