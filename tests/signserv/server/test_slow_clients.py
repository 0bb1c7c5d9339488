"""Hostile connections (issue 17): slow senders and a cold flood do not stop the service."""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from collections import Counter
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
    # Warm the key first: 64 first requests at once would be cold, and beyond the cold slots
    # they are refused with Retry-After (test_a_cold_flood_...); this burst is about reading.
    for _ in range(16):
        assert requests.post(f"{service.url}/sign/admin", data=body, headers=headers, timeout=10).ok
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


# argon2id dear enough that a cold request holds its thread for a while on 2 cores, as in
# production (the test default is a few milliseconds), and a lockout that never stops the
# flood: what is under test is the cold path's admission, not the lockout.
COLD_FLOOD_CONFIG = """\
kdf:
  time_cost: 2
  memory_cost_kib: 32768
  parallelism: 1
lockout:
  pair_threshold: 1000000
  key_threshold: 1000000
"""
FLOOD_ADDRESSES = [f"127.0.0.{host}" for host in range(2, 10)]
FLOOD_CONNECTIONS_PER_ADDRESS = 8
# The target is a p99 under 250 ms on an otherwise idle 2-core machine. Here the flood's
# own client shares those 2 cores (with whatever else CI runs), so the bound is looser; a
# starved warm client waits many seconds (before this fix: the flood parked every thread).
WARM_P99_BOUND_SECONDS = 1.0
WARM_SAMPLES = 100
WARM_BUDGET_SECONDS = 30.0


def flood_one_name_and_token(
    url: str, address: str, body: str, token: str, stop: threading.Event, statuses: Counter[str]
) -> None:
    """Keep one connection from ``address`` asking, without pause, for the same key with the
    same token; tally each answer's status (and whether a 503 carried Retry-After)."""
    host, port = url.removeprefix("http://").split(":")
    headers = {"Authorization": token, "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(
        host, int(port), timeout=10, source_address=(address, 0)
    )
    while not stop.is_set():
        try:
            connection.request("POST", "/sign/admin", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            statuses["dropped"] += 1
            connection.close()
            continue
        status = str(response.status)
        if response.status == 503 and response.getheader("Retry-After") is None:
            status += " without Retry-After"
        statuses[status] += 1
    connection.close()


def test_a_cold_flood_of_one_name_and_token_leaves_warm_requests_a_thread(
    start_signserv, tmp_path
) -> None:
    """Hostile: 64 connections from 8 addresses repeat one key name with one wrong token as fast
    as they are answered; the owner's warm signatures keep their latency, and the refused
    excess is told when to come back."""
    home = make_home(tmp_path / "cold-flood")
    home.config.write_text(COLD_FLOOD_CONFIG)  # in place of the fast test cost
    token = home.create_key("admin")
    service = start_signserv(home)
    body = '{"hash_algorithm":"sha2-512","input":"aGVsbG8="}'
    owner = requests.Session()
    headers = {"Authorization": token, "Content-Type": "application/json"}
    for _ in range(4):  # warm the key in the worker this kept-alive connection reaches
        assert owner.post(f"{service.url}/sign/admin", data=body, headers=headers, timeout=30).ok
    stop = threading.Event()
    statuses: Counter[str] = Counter()
    flooders = [
        threading.Thread(
            target=flood_one_name_and_token,
            args=(service.url, address, body, "wrong-" + "0" * 40, stop, statuses),
        )
        for address in FLOOD_ADDRESSES
        for _ in range(FLOOD_CONNECTIONS_PER_ADDRESS)
    ]
    for flooder in flooders:
        flooder.start()
    latencies = []
    try:
        time.sleep(1.0)  # let the flood fill every cold slot
        budget_ends = time.monotonic() + WARM_BUDGET_SECONDS
        while len(latencies) < WARM_SAMPLES and time.monotonic() < budget_ends:
            started = time.monotonic()
            response = owner.post(
                f"{service.url}/sign/admin", data=body, headers=headers, timeout=30
            )
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200
            time.sleep(0.05)
        assert requests.get(f"{service.url}/healthz", timeout=5).ok
    finally:
        stop.set()
        for flooder in flooders:
            flooder.join(timeout=30)
    assert len(latencies) == WARM_SAMPLES, (
        f"{len(latencies)} warm answers in {WARM_BUDGET_SECONDS} s"
    )
    latencies.sort()
    p99 = latencies[98]
    print(
        f"warm p50 {latencies[49] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; flood {dict(statuses)}"
    )
    assert p99 < WARM_P99_BOUND_SECONDS, f"warm p99 {p99:.2f} s during the flood"
    assert statuses["503"] > 0, f"the flood was never refused: {dict(statuses)}"
    assert statuses["401"] > 0, f"no flood request reached argon2id: {dict(statuses)}"
    assert not any("without" in status for status in statuses), dict(statuses)


def idle_connections(url: str, address: str, count: int) -> list[socket.socket]:
    """``count`` connections from ``address`` that send nothing."""
    host, port = url.removeprefix("http://").split(":")
    return [
        socket.create_connection((host, int(port)), timeout=5, source_address=(address, 0))
        for _ in range(count)
    ]


def closed_by_the_server(connection: socket.socket, within: float) -> bool:
    """True once the server closes ``connection`` (end of stream or reset), within ``within`` s."""
    connection.settimeout(within)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_connections_beyond_the_per_address_bound_close_that_address_oldest_idle_ones(
    start_signserv, tmp_path
) -> None:
    """Hostile: 127.0.0.2 opens 16 idle connections, the bound, then 4 more; its 4 oldest are
    closed at once, the rest stay open (never more than 16), and 127.0.0.1 is answered."""
    home = make_home(tmp_path / "per-address", "server:\n  connections_per_address: 16\n")
    service = start_signserv(home, workers=1)  # the bound is per worker: one makes it exact
    held = idle_connections(service.url, "127.0.0.2", 16)
    try:
        time.sleep(0.5)  # each first waits in the poller, oldest first
        beyond = idle_connections(service.url, "127.0.0.2", 4)
        assert all(closed_by_the_server(connection, within=2.0) for connection in held[:4])
        assert requests.get(f"{service.url}/healthz", timeout=5).ok
        assert all(is_open(connection) for connection in held[4:] + beyond)
    finally:
        for connection in held + beyond:
            connection.close()


def trickle_body(url: str, address: str, seconds: float) -> bool:
    """Send a whole request head from ``address``, then its body one byte a second; True when
    the server drops the connection before ``seconds`` have passed."""
    host, port = url.removeprefix("http://").split(":")
    head = b"POST /sign/admin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=2, source_address=(address, 0)) as s:
        s.sendall(head)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                s.send(b"{")
            except OSError:
                return True
            if closed_by_the_server(s, within=1.0):
                return True
    return False


def warm_signature_latencies(url: str, token: str, count: int) -> list[float]:
    """Sign ``count`` times, one every 0.1 s, as the owner of a warm key; each answer's latency."""
    headers = {"Authorization": token, "Content-Type": "application/json"}
    body = '{"hash_algorithm":"sha2-512","input":"aGVsbG8="}'
    latencies = []
    for _ in range(count):
        started = time.monotonic()
        assert requests.get(f"{url}/healthz", timeout=10).ok
        response = requests.post(f"{url}/sign/admin", data=body, headers=headers, timeout=10)
        assert response.status_code == 200
        latencies.append(time.monotonic() - started)
        time.sleep(0.1)
    return latencies


def test_64_connections_trickling_a_body_are_dropped_and_others_still_served(
    start_signserv, tmp_path
) -> None:
    """Hostile: 64 connections from 127.0.0.2 send a whole head, then a byte of body a second;
    every one is dropped (beyond the per-address bound at once, the others at the 3 s
    deadline), and /healthz and a warm signature keep answering from 127.0.0.1 meanwhile."""
    home = make_home(tmp_path / "body", "server:\n  request_read_seconds: 3\n")
    token = home.create_key("admin")
    service = start_signserv(home)
    warm_signature_latencies(service.url, token, 2)
    with ThreadPoolExecutor(max_workers=64) as pool:
        dropped = [pool.submit(trickle_body, service.url, "127.0.0.2", 10.0) for _ in range(64)]
        time.sleep(0.5)
        latencies = warm_signature_latencies(service.url, token, 20)
        assert all(future.result(timeout=30) for future in dropped), "a trickler outlived 10 s"
    print(f"healthz + warm sign: worst {max(latencies) * 1000:.0f} ms")
    assert max(latencies) < 1.0, f"the owner waited {max(latencies):.2f} s"


IDLE_CONNECTIONS = 500


def count_open(connections: list[socket.socket]) -> int:
    """How many of ``connections`` the server has not closed (nothing readable: no end of stream)."""
    poll = select.poll()
    for connection in connections:
        poll.register(connection, select.POLLIN)
    readable = {fd for fd, _ in poll.poll(0)}
    return sum(connection.fileno() not in readable for connection in connections)


def test_500_idle_connections_leave_warm_signatures_answered(start_signserv, tmp_path) -> None:
    """Hostile: 500 idle connections from 127.0.0.2-9 (each within its address's bound, so all
    are held until the 5 s keep-alive timeout) do not delay a warm signature from 127.0.0.1."""
    home = make_home(tmp_path / "idle")
    token = home.create_key("admin")
    service = start_signserv(home)
    warm_signature_latencies(service.url, token, 2)
    idle = [
        connection
        for address in FLOOD_ADDRESSES
        for connection in idle_connections(service.url, address, IDLE_CONNECTIONS // 8 + 1)
    ][:IDLE_CONNECTIONS]
    try:
        latencies = warm_signature_latencies(service.url, token, 10)
        held = count_open(idle)
    finally:
        for connection in idle:
            connection.close()
    print(f"{held} idle held; healthz + warm sign: worst {max(latencies) * 1000:.0f} ms")
    assert held == IDLE_CONNECTIONS, f"only {held} idle connections were held, not all"
    assert max(latencies) < 1.0, f"the owner waited {max(latencies):.2f} s"
