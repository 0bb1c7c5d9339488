"""Behind a load balancer: the PROXY protocol line names the client, and only allowed senders' do.

HAProxy in ``mode http`` would make every client the balancer's address for lockout and audit
(signserv does not read X-Forwarded-For); ``send-proxy`` with ``server.proxy_protocol_from``
passes the client's address (deploy/replicated/haproxy.cfg).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

from signserv import contract

from ...conftest import RunningService, SignservHome, make_home

WRONG = "wrong-token-0123456789abcdef"
BODY = contract.build_sign_request_body(b"behind a balancer")
CLAIMED_CLIENT = "203.0.113.7"


def _sign_through_proxy_line(service: RunningService, name: str) -> int:
    """POST /sign/NAME with a wrong token, prefixed by a PROXY v1 line naming CLAIMED_CLIENT."""
    parts = urlsplit(service.url)
    request = (
        f"PROXY TCP4 {CLAIMED_CLIENT} 127.0.0.1 40000 {parts.port}\r\n"
        f"POST /sign/{name} HTTP/1.1\r\nHost: signserv\r\nAuthorization: {WRONG}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii") + BODY
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]) if answer else 0


def _audited_clients(home: SignservHome) -> list[str]:
    lines = home.run("audit", "tail", "--json").stdout.splitlines()
    return [json.loads(line)["client"] for line in lines]


def test_an_allowed_balancers_proxy_line_makes_its_client_the_audited_and_locked_address(
    tmp_path: Path, start_signserv
) -> None:
    home = make_home(tmp_path, "server:\n  proxy_protocol_from: 127.0.0.1\n")
    home.create_key("k")
    service = start_signserv(home)
    assert _sign_through_proxy_line(service, "k") == 401
    assert _audited_clients(home) == [CLAIMED_CLIENT]


def test_a_proxy_line_from_a_peer_not_allowed_names_nobody(tmp_path: Path, start_signserv) -> None:
    """Hostile: a client that is not the balancer cannot choose the address it is locked out as."""
    home = make_home(tmp_path, "server:\n  proxy_protocol_from: 192.0.2.1\n")
    home.create_key("k")
    service = start_signserv(home)
    assert _sign_through_proxy_line(service, "k") == 403  # gunicorn: forbidden PROXY line
    audit_log = home.home / "audit.log"
    assert not audit_log.exists() or CLAIMED_CLIENT not in _audited_clients(home)


def test_the_balancer_is_not_held_to_one_clients_connection_bound(
    tmp_path: Path, start_signserv
) -> None:
    """Every client's connection comes from the balancer: the per-address bounds, meant for
    one client, must not close its connections (each client's own bound is the balancer's)."""
    home = make_home(
        tmp_path, "server:\n  proxy_protocol_from: 127.0.0.1\n  connections_per_address: 2\n"
    )
    home.create_key("k")
    service = start_signserv(home)
    parts = urlsplit(service.url)
    held = [socket.create_connection((parts.hostname, parts.port), timeout=30) for _ in range(10)]
    try:
        assert [_sign_through_proxy_line(service, "k") for _ in range(4)] == [401] * 4
    finally:
        for connection in held:
            connection.close()
