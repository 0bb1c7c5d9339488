"""gunicorn's threaded worker, made to hold under slow, idle and numerous connections (issue 17).

gunicorn's ``gthread`` worker parks idle kept-alive connections in a poller, but a new
connection takes a thread at once (for up to 5 s while it sends nothing), and once a request's
first byte arrives the thread reads the rest with blocking reads and no deadline: a few dozen
clients trickling their headers or body, or a few hundred idle connections, hold every thread
and nothing is answered. This worker bounds what one client can hold:

- a new connection that has sent nothing yet holds no thread: it goes straight back to
  gunicorn's poller (and is closed there after the keep-alive timeout), so idle connections
  cost a file descriptor each, not a thread;
- a request must arrive whole (head and body) within ``request_read_seconds`` of a thread
  taking it up, or its connection is shut down, which frees the thread at once;
- one client address may hold at most ``connections_per_address`` open connections to a
  worker, idle or busy; a new one beyond that closes the address's oldest connection that
  holds no thread (idle, or kept alive between requests), or is itself closed as it is
  accepted when every one of them is being served, so one address cannot use up a worker's
  ``worker_connections`` (nor its descriptors) and shut every other client out, and a client
  that opens a connection per request is not refused by its own closed ones not yet reaped;
- one client address may have at most ``requests_read_per_address`` requests of a worker
  partly arrived at once. Only requests being read count: a client's kept-alive connections
  idle between requests, and requests being answered, do not. A connection beyond the bound is
  served anyway when its whole request already waits in the socket buffer (an ordinary client
  sends it at once), and closed at once otherwise, holding the thread for microseconds. So a
  burst from one legitimate client is served whole; a slow sender's connections beyond the
  bound are closed. Over TLS the request cannot be inspected before the handshake, so there a
  connection beyond the bound waits up to :data:`TLS_SLOT_WAIT_SECONDS` for one of its
  address's requests to finish arriving (a handshake takes milliseconds), and is closed if none
  does.

The application says when a request has arrived (:meth:`ReadDeadlines.arrived`, called once
its body is read); the worker's main loop, which wakes at least once a second, shuts down the
connections past their deadline.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

# _DEFER is gthread's own answer for "no data yet: park the connection in the poller".
from gunicorn.workers.gthread import _DEFER, TConn, ThreadWorker

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
TLS_SLOT_WAIT_SECONDS = 0.05
_HEAD_END = b"\r\n\r\n"
_PEEK_BYTES = 16384
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)")


class ReadDeadlines:
    """Requests still arriving, by connection and by client address, with their deadlines."""

    def __init__(self, seconds: float, per_address: int) -> None:
        self.seconds = seconds
        self.per_address = per_address
        self._lock = threading.Lock()
        self._one_arrived = threading.Condition(self._lock)
        self._reading: dict[int, tuple[socket.socket, str, float]] = {}
        self._by_address: Counter[str] = Counter()

    def start(
        self,
        connection: socket.socket,
        address: str,
        wait_seconds: float = 0.0,
        beyond_bound: bool = False,
    ) -> bool:
        """Count ``connection``'s request as arriving, if ``address`` is (or, within
        ``wait_seconds``, gets) below its bound; ``beyond_bound`` counts it regardless."""
        with self._lock:
            if not beyond_bound and not self._one_arrived.wait_for(
                lambda: self._below_bound(address), timeout=wait_seconds
            ):
                return False
            deadline = time.monotonic() + self.seconds
            self._reading[connection.fileno()] = (connection, address, deadline)
            self._by_address[address] += 1
            return True

    def _below_bound(self, address: str) -> bool:
        return not self.per_address or self._by_address[address] < self.per_address

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
        self._one_arrived.notify_all()
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


class OpenConnections:
    """Open connections of one worker by client address, against a bound (0: no bound)."""

    def __init__(self, per_address: int) -> None:
        self.per_address = per_address
        self._lock = threading.Lock()
        self._by_address: Counter[str] = Counter()

    def opened(self, address: str) -> bool:
        """Count a new connection from ``address``; False (and not counted) beyond the bound."""
        with self._lock:
            if self.per_address and self._by_address[address] >= self.per_address:
                return False
            self._by_address[address] += 1
            return True

    def closed(self, address: str) -> None:
        """A counted connection from ``address`` was closed."""
        with self._lock:
            self._by_address[address] -= 1
            if self._by_address[address] <= 0:
                del self._by_address[address]


class _CountedConnection(TConn):  # type: ignore[misc]
    """gthread's connection, uncounted from its address when it is closed (once)."""

    def __init__(self, open_connections: OpenConnections, address: str, *args: Any) -> None:
        super().__init__(*args)
        self._open_connections = open_connections
        self.address = address
        self._counted = True

    def close(self, graceful: bool = False) -> None:
        try:
            super().close(graceful)
        finally:
            if self._counted:
                self._counted = False
                self._open_connections.closed(self.address)


def _address_of(client: object) -> str:
    return str(client[0]) if isinstance(client, tuple) else ""


def whole_request(waiting: bytes) -> bool:
    """True when ``waiting`` holds a complete HTTP/1.1 request: head and declared body."""
    head_end = waiting.find(_HEAD_END)
    if head_end < 0:
        return False
    head = waiting[:head_end].lower()
    if b"\r\ntransfer-encoding:" in head:
        return waiting.endswith(b"0\r\n\r\n")  # the last chunk, with no trailers
    declared = _CONTENT_LENGTH.search(head)
    body_bytes = int(declared.group(1)) if declared else 0
    return len(waiting) >= head_end + len(_HEAD_END) + body_bytes


def _peek(connection: socket.socket) -> bytes | None:
    """What waits unread in ``connection``'s buffer; None at end of stream or on error."""
    try:
        waiting = connection.recv(_PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""
    except OSError:
        return None
    return waiting or None


class GuardedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` with a read deadline and per-address bounds on open connections and on
    requests being read.

    Configured by :func:`guarded_worker_class`.
    """

    deadlines: ReadDeadlines
    connections: OpenConnections
    proxy_senders: tuple[IPNetwork, ...]

    def accept(self, listener: socket.socket) -> None:
        """gthread's accept, closing at once a connection beyond its address's bound."""
        try:
            client_socket, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        address = _address_of(client)
        from_proxy = self._is_proxy(address)
        if not from_proxy and not self._room_for(address):
            client_socket.close()
            return
        self.nr_conns += 1
        client_socket.setblocking(True)
        arguments = (self.cfg, client_socket, client, listener.getsockname())
        self.enqueue_req(
            TConn(*arguments)
            if from_proxy
            else _CountedConnection(self.connections, address, *arguments)
        )

    def _room_for(self, address: str) -> bool:
        """Count a new connection from ``address``, closing one of its waiting ones if need be."""
        if self.connections.opened(address):
            return True
        return self._close_a_waiting(address) and self.connections.opened(address)

    def _close_a_waiting(self, address: str) -> bool:
        """Close one of ``address``'s connections that hold no thread; False when all of them
        are being served.

        First one its client has closed already: a client that opens a connection per request
        leaves the server's ends counted until the poller sees them go, and would otherwise be
        refused by its own past. Else the oldest with nothing waiting to be read, kept alive
        between requests (its answers were sent) before one that has sent nothing yet, so that
        a request already sent is not dropped. An attacker holding the bound gets its own closed.
        """
        candidates = [
            (waiting, connection)
            for waiting in (self.keepalived_conns, self.pending_conns)
            for connection in waiting
            if isinstance(connection, _CountedConnection) and connection.address == address
        ]
        if not candidates:
            return False
        chosen, idle = candidates[0], None
        for candidate in candidates:
            waits = _peek(candidate[1].sock)
            if waits is None:  # its client has gone
                chosen, idle = candidate, None
                break
            if waits == b"" and idle is None:
                idle = candidate
        waiting, connection = idle or chosen
        waiting.remove(connection)
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(connection.sock)
        self.nr_conns -= 1
        connection.close()
        return True

    def _is_proxy(self, address: str) -> bool:
        """Whether ``address`` is a configured PROXY-protocol sender: it carries many clients'
        connections, so the per-address bounds, meant for one client, do not apply to it."""
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(peer in network for network in self.proxy_senders)

    def handle(self, connection: TConn) -> Any:
        """Serve one request, under the read deadline until the application says it arrived."""
        if not connection.initialized and _peek(connection.sock) == b"":
            return _DEFER  # nothing sent yet: wait in gunicorn's poller, holding no thread
        address = _address_of(connection.client)
        if not self._admit(connection, address):
            # Shut down first: gunicorn's graceful close would otherwise wait up to 2 s for
            # this client, in the worker's main loop.
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
            return False
        try:
            return super().handle(connection)
        finally:
            self.deadlines.arrived(connection.sock)

    def _admit(self, connection: TConn, address: str) -> bool:
        """Count this connection's request against its address's bound, or refuse it."""
        if not isinstance(connection, _CountedConnection):  # from a PROXY sender (see accept)
            return self.deadlines.start(connection.sock, address, beyond_bound=True)
        if self.deadlines.start(connection.sock, address):
            return True
        if self.cfg.is_ssl:
            return self.deadlines.start(
                connection.sock, address, wait_seconds=TLS_SLOT_WAIT_SECONDS
            )
        if self._whole_request_waiting(connection):
            return self.deadlines.start(connection.sock, address, beyond_bound=True)
        return False

    def _whole_request_waiting(self, connection: TConn) -> bool:
        """True when a whole request waits, read ahead or in the (plain-text) socket's buffer."""
        read_ahead = connection.parser.unreader.buf.getvalue() if connection.initialized else b""
        return whole_request(read_ahead + (_peek(connection.sock) or b""))

    def murder_pending(self) -> None:
        """The main loop's periodic sweep: expired pending connections, then late requests."""
        super().murder_pending()
        self.deadlines.shut_down_late()


def guarded_worker_class(
    deadlines: ReadDeadlines, connections_per_address: int, proxy_senders: Sequence[str] = ()
) -> type[GuardedThreadWorker]:
    """A worker class with these bounds (gunicorn takes a class, and builds its workers).

    Each worker is forked from the master, so each counts its own connections. Connections
    from ``proxy_senders`` (addresses or networks allowed to send a PROXY line) keep the read
    deadline but not the per-address bounds: the proxy in front bounds its clients.
    """
    return type(
        "SignservWorker",
        (GuardedThreadWorker,),
        {
            "deadlines": deadlines,
            "connections": OpenConnections(connections_per_address),
            "proxy_senders": tuple(
                ipaddress.ip_network(sender, strict=False) for sender in proxy_senders
            ),
        },
    )
