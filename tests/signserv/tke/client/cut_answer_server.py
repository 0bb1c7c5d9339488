"""A real HTTP server on 127.0.0.1 that loses its answers.

Each request is read whole and recorded. Then the server closes the connection without a
word (``drop``), or sends a status line and headers that promise a JSON body of
``Content-Length`` bytes and only part of it, and closes the connection (``cut``) or goes
silent until the client gives up (``stall``).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Literal

LossMode = Literal["drop", "cut", "stall"]
PROMISED_BODY = b'{"response": "' + b"0" * 4000 + b'"}'
SENT_PART = PROMISED_BODY[:100]
STALL_SECONDS = 5.0


def read_request(connection: socket.socket) -> bytes:
    """One whole HTTP/1.1 request with a Content-Length body (or none)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@dataclass
class CutAnswerServer:
    """Counts the requests it got; every answer loses its body as ``mode`` says."""

    listener: socket.socket
    mode: LossMode
    requests: list[bytes] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

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
                self.requests.append(read_request(connection))
                if self.mode == "drop":
                    continue
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(PROMISED_BODY)}\r\n\r\n".encode()
                    + SENT_PART
                )
                if self.mode == "stall":
                    self._stop.wait(STALL_SECONDS)


@contextmanager
def cut_answer_server(mode: LossMode) -> Iterator[CutAnswerServer]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = CutAnswerServer(listener, mode)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server._stop.set()
        with suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        thread.join(timeout=STALL_SECONDS + 1)
