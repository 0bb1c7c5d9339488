"""Hostile connections (issue 17): slow senders and a cold flood do not stop the service."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from ...conftest import make_home

SLOW_CONNECTIONS = 48


def trickle_headers(url: str, address: str, seconds: float) -> None:
    """Open one connection from ``address`` and send a request head one byte a second."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=2, source_address=(address, 0)) as s:
        deadline = time.monotonic() + seconds
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 64:
            if time.monotonic() >= deadline:
                return
            try:
                s.send(bytes([byte]))
            except OSError:
                return  # dropped by the server: what the deadline is for
            time.sleep(1)


def test_48_trickling_connections_do_not_stop_healthz_or_signatures(
    start_signserv, tmp_path
) -> None:
    """Hostile: 48 connections from 127.0.0.2 trickle their headers; 127.0.0.1 is still served."""
    bounds = "server:\n  request_read_seconds: 3\n  requests_read_per_address: 8\n"
    home = make_home(tmp_path / "slow", bounds)
    token = home.create_key("admin")
    service = start_signserv(home)
    headers = {"Authorization": token, "Content-Type": "application/json"}
    body = '{"hash_algorithm":"sha2-512","input":"aGVsbG8="}'
    assert requests.post(f"{service.url}/sign/admin", data=body, headers=headers, timeout=5).ok
    with ThreadPoolExecutor(max_workers=SLOW_CONNECTIONS) as pool:
        for _ in range(SLOW_CONNECTIONS):
            pool.submit(trickle_headers, service.url, "127.0.0.2", 8.0)
        time.sleep(1.5)
        worst = 0.0
        for _ in range(10):
            started = time.monotonic()
            assert requests.get(f"{service.url}/healthz", timeout=5).ok
            response = requests.post(
                f"{service.url}/sign/admin", data=body, headers=headers, timeout=5
            )
            assert response.status_code == 200
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.3)
    assert worst < 1.0, f"the owner waited {worst:.2f} s"


def is_open(connection: socket.socket) -> bool:
    """True while the server keeps ``connection`` open (it has sent nothing back)."""
    connection.settimeout(0.05)
    try:
        return connection.recv(1) != b""
    except TimeoutError:
        return True
    except OSError:
        return False


def test_a_burst_from_one_client_is_served_while_a_slow_loris_is_bounded(
    start_signserv, tmp_path
) -> None:
    """Hostile: 48 half-sent requests from 127.0.0.2 keep at most the default 8 per worker open,
    while 64 requests at once from 127.0.0.1, new and kept-alive connections, all get 200."""
    home = make_home(tmp_path / "burst", "server:\n  request_read_seconds: 4\n")
    token = home.create_key("admin")
    service = start_signserv(home)
    host, port = service.url.removeprefix("http://").split(":")
    headers = {"Authorization": token, "Content-Type": "application/json"}
    body = '{"hash_algorithm":"sha2-512","input":"aGVsbG8="}'
    slow = [
        socket.create_connection((host, int(port)), source_address=("127.0.0.2", 0))
        for _ in range(SLOW_CONNECTIONS)
    ]
    for connection in slow:
        connection.sendall(b"POST /sign/admin HTTP/1.1\r\n")
    kept_alive = requests.Session()
    kept_alive.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

    def sign(index: int) -> int:
        post = kept_alive.post if index % 2 else requests.post
        return post(f"{service.url}/sign/admin", data=body, headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(sign, range(64))) + list(pool.map(sign, range(64)))
    time.sleep(1)
    still_open = sum(is_open(connection) for connection in slow)
    assert statuses == [200] * 128
    assert 0 < still_open <= 2 * 8, f"{still_open} half-sent requests held open"
    time.sleep(4)
    assert not any(is_open(connection) for connection in slow), "the read deadline was not kept"
    for connection in slow:
        connection.close()
