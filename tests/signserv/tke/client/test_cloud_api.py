"""The cloud TKE API transport against local servers that misbehave on purpose (§3.3).

A POST whose answer is lost is never re-sent, a redirect is never followed (it would carry
the access token elsewhere), and ``emulator serve --access-token-file`` accepts exactly that
token.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from signserv.secret import Secret
from signserv.tke.client.cloud_api import (
    CloudTkeApi,
    CommandAnswerLost,
    TkeApiError,
    TkeApiRefused,
    tke_api_session,
)
from signserv.tke.client.iam import IssuedAccessToken
from signserv.tke.client.targeting import CloudTarget
from signserv.tke.emulator import DEFAULT_STATE_FILENAME

from ..emulator_server import start_emulator_server

ACCESS_TOKEN = "test-access-token-7f3a"
INSTANCE = "11111111-2222-3333-4444-555555555555"
# A well-formed HTPRequest (TKE-REFERENCE §10 vector 13).
HTP_REQUEST = (
    "181;PCI request;XPNUM   ;1;        ;0020040000805434000000000000000F000000000000000000000000"
    "0000002A302804040001002904040000000F0418301604040001000A04080000000F000000000400040004000400"
)


def api_at(base_url: str) -> CloudTkeApi:
    """A client of ``base_url`` with a fixed access token."""
    return CloudTkeApi(
        CloudTarget(base_url, INSTANCE),
        IssuedAccessToken(Secret(ACCESS_TOKEN)),
        session=tke_api_session(),
        timeout=5,
    )


@dataclass
class AnswerDroppingServer:
    """Reads each whole HTTP request, counts it, and closes the connection without answering."""

    listener: socket.socket
    requests: list[bytes] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed by the test
            with connection:
                self.requests.append(_read_request(connection))


def _read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def answer_dropping_server() -> Iterator[AnswerDroppingServer]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = AnswerDroppingServer(listener)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    listener.close()
    thread.join(timeout=5)


def test_a_post_whose_answer_is_lost_is_sent_once_and_the_user_is_told_to_re_run(
    answer_dropping_server: AnswerDroppingServer,
) -> None:
    """The unit got the command; its answer never came. No retry: a re-run reads the counter."""
    with pytest.raises(CommandAnswerLost) as lost:
        api_at(answer_dropping_server.base_url).send("hsm-1", HTP_REQUEST)
    assert len(answer_dropping_server.requests) == 1
    assert HTP_REQUEST.encode() in answer_dropping_server.requests[0]
    message = str(lost.value)
    assert "It was not re-sent" in message
    assert "Re-run the signserv-tke command" in message
    assert ACCESS_TOKEN not in message


@dataclass
class RecordingServer:
    """An HTTP server that records each request's path and headers and answers ``reply``."""

    server: ThreadingHTTPServer
    seen: list[tuple[str, dict[str, str]]]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def start_recording_server(status: int, headers: dict[str, str]) -> RecordingServer:
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            seen.append((self.path, dict(self.headers.items())))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads ``seen``, not a log."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return RecordingServer(server, seen)


@pytest.fixture
def redirect_target() -> Iterator[RecordingServer]:
    server = start_recording_server(200, {"Content-Type": "application/json"})
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_redirect_is_not_followed_and_carries_no_credentials(
    redirect_target: RecordingServer, status: int, method: str
) -> None:
    """A 3xx is an error naming where it pointed; the other host never sees a request."""
    location = f"{redirect_target.base_url}/v1/tke/{INSTANCE}/hsms"
    redirecting = start_recording_server(status, {"Location": location})
    try:
        api = api_at(redirecting.base_url)
        with pytest.raises(TkeApiError) as refused:
            if method == "GET":
                api.list_crypto_units()
            else:
                api.send("hsm-1", HTP_REQUEST)
    finally:
        redirecting.server.shutdown()
        redirecting.server.server_close()
    assert len(redirecting.seen) == 1
    assert redirect_target.seen == []
    message = str(refused.value)
    assert f"redirecting to {location}" in message
    assert "redirects are not followed" in message
    assert ACCESS_TOKEN not in message


def test_emulator_serve_with_access_token_file_accepts_exactly_that_token(
    tmp_path: Path,
) -> None:
    """``--access-token-file``: that token lists the units; another token gets the SDK's 401."""
    token_file = tmp_path / "access-token"
    token_file.write_text(ACCESS_TOKEN + "\n")
    server = start_emulator_server(
        tmp_path / DEFAULT_STATE_FILENAME, None, access_token_file=token_file
    )
    try:
        api = CloudTkeApi(
            CloudTarget(server.base_url, server.instance_id),
            IssuedAccessToken(Secret(ACCESS_TOKEN)),
            session=tke_api_session(),
            timeout=10,
        )
        assert api.list_crypto_units()["source_hsms"]
        other = CloudTkeApi(
            CloudTarget(server.base_url, server.instance_id),
            IssuedAccessToken(Secret("some-other-token")),
            session=tke_api_session(),
            timeout=10,
        )
        with pytest.raises(TkeApiRefused) as refused:
            other.list_crypto_units()
        assert refused.value.status == 401
        unauthenticated = requests.get(
            f"{server.base_url}/v1/tke/{server.instance_id}/hsms", timeout=10
        )
        assert unauthenticated.status_code == 401
    finally:
        server.stop()
    assert ACCESS_TOKEN not in server.log.read_text()
