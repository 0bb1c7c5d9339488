"""gunicorn's threaded worker, made to hold under slow, idle and numerous connections (issue 17).

gunicorn's ``gthread`` worker parks idle kept-alive connections in a poller, but a new
connection takes a thread at once (for up to 5 s while it sends nothing), and once a request's
first byte arrives the thread reads the rest with blocking reads and no deadline: a few dozen
clients trickling their headers or body, or a few hundred idle connections, hold every thread
and nothing is answered. This worker bounds what one client can hold:

- a request must arrive whole (head and body) within ``request_read_seconds`` of a thread
  taking it up, or its connection is shut down, which frees the thread at once;
- one client address may have at most ``requests_read_per_address`` threads of a worker
  waiting for its requests to arrive; beyond that, a connection whose request head is not
  already complete in the socket buffer (within :data:`HEAD_GRACE_SECONDS`) is closed when a
  thread takes it up. An ordinary client sends its request at once, so a burst from one
  address is served whole; only slow or idle connections meet the bound. Over TLS the head
  cannot be inspected before the handshake, so there every connection beyond the bound is
  closed.

The application says when a request has arrived (:meth:`ReadDeadlines.arrived`, called once
its body is read); the worker's main loop, which wakes at least once a second, shuts down the
connections past their deadline.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

HEAD_GRACE_SECONDS = 0.1
_HEAD_END = b"\r\n\r\n"
_PEEK_BYTES = 16384


class ReadDeadlines:
    """Requests still arriving, by connection and by client address, with their deadlines."""

    def __init__(self, seconds: float, per_address: int) -> None:
        self.seconds = seconds
        self.per_address = per_address
        self._lock = threading.Lock()
        self._reading: dict[int, tuple[socket.socket, str, float]] = {}
        self._by_address: Counter[str] = Counter()

    def at_bound(self, address: str) -> bool:
        """True when ``address`` already has as many requests arriving as it may."""
        with self._lock:
            return bool(self.per_address) and self._by_address[address] >= self.per_address

    def started(self, connection: socket.socket, address: str) -> None:
        """A thread takes up ``connection``."""
        with self._lock:
            deadline = time.monotonic() + self.seconds
            self._reading[connection.fileno()] = (connection, address, deadline)
            self._by_address[address] += 1

    def arrived(self, connection: socket.socket) -> None:
        """The request on ``connection`` has arrived whole (or its thread let go of it)."""
        with self._lock:
            self._forget(connection.fileno())

    def _forget(self, fd: int) -> socket.socket | None:
        found = self._reading.pop(fd, None)
        if found is None:
            return None
        connection, address, _ = found
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]
        return connection

    def shut_down_late(self) -> int:
        """Shut down every connection past its deadline; returns how many."""
        now = time.monotonic()
        with self._lock:
            late = [fd for fd, (_, _, deadline) in self._reading.items() if deadline <= now]
            connections = [self._forget(fd) for fd in late]
        for connection in connections:
            if connection is not None:
                with contextlib.suppress(OSError):  # already closed by its thread
                    connection.shutdown(socket.SHUT_RDWR)
        return len(connections)


class GuardedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` with a read deadline and a per-address bound on requests being read.

    Configured by :func:`guarded_worker_class`.
    """

    deadlines: ReadDeadlines

    def handle(self, connection: TConn) -> Any:
        """Serve one request, under the read deadline until the application says it arrived."""
        address = str(connection.client[0]) if isinstance(connection.client, tuple) else ""
        if self.deadlines.at_bound(address) and not self._head_complete(connection):
            # Shut down first: gunicorn's graceful close would otherwise wait up to 2 s for
            # this client, in the worker's main loop.
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
            return False
        self.deadlines.started(connection.sock, address)
        try:
            return super().handle(connection)
        finally:
            self.deadlines.arrived(connection.sock)

    def _head_complete(self, connection: TConn) -> bool:
        """True when a whole request head waits in the buffer of a plain-text connection."""
        if connection.initialized and connection.parser.unreader.buf.getvalue():
            return True  # read ahead with the previous request on this kept-alive connection
        if self.cfg.is_ssl:
            return False
        ready = time.monotonic() + HEAD_GRACE_SECONDS
        while True:
            try:
                waiting = connection.sock.recv(_PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                waiting = b""
            except OSError:
                return False
            if _HEAD_END in waiting or time.monotonic() >= ready:
                return _HEAD_END in waiting
            time.sleep(HEAD_GRACE_SECONDS / 5)

    def murder_pending(self) -> None:
        """The main loop's periodic sweep: expired pending connections, then late requests."""
        super().murder_pending()
        self.deadlines.shut_down_late()


def guarded_worker_class(deadlines: ReadDeadlines) -> type[GuardedThreadWorker]:
    """A worker class with these bounds (gunicorn takes a class, and builds its workers)."""
    return type("SignservWorker", (GuardedThreadWorker,), {"deadlines": deadlines})
