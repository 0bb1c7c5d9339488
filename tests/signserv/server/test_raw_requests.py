"""Hostile raw requests (issue 17, item 6) against a real gunicorn service with its access log on:
clear 400/413 answers and no traceback, no path remapping by a loopback peer, no query strings
in any log."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from ...conftest import RunningService, make_home, start_service

MAX_BODY = 8192


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One service with the access log on and an 8 KiB body limit, key ``admin``."""
    limits = f"server:\n  access_log: true\n  max_request_bytes: {MAX_BODY}\n"
    home = make_home(tmp_path_factory.mktemp("raw"), limits)
    token = home.create_key("admin")
    running = start_service(home)
    running.tokens["admin"] = token
    yield running
    running.stop()


def raw_status(service: RunningService, head: str, body: bytes) -> int:
    """Send ``head`` (with Host, Authorization and Connection: close added) and ``body`` as
    they are; the status the service answers."""
    host, port = service.url.removeprefix("http://").split(":")
    request = (
        f"{head}\r\nHost: {host}\r\nAuthorization: {service.tokens['admin']}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def chunked(body: bytes) -> bytes:
    """``body`` in 512-byte chunks, then the last chunk."""
    pieces = [body[at : at + 512] for at in range(0, len(body), 512)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def assert_no_traceback(service: RunningService) -> None:
    log = service.log.read_text()
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]


def test_a_malformed_chunked_body_gets_400_without_a_traceback(service) -> None:
    """Hostile: a chunk size that is not hexadecimal."""
    head = "POST /sign/admin HTTP/1.1\r\nTransfer-Encoding: chunked"
    assert raw_status(service, head, b"zz\r\nabc\r\n0\r\n\r\n") == 400
    assert_no_traceback(service)


def test_a_chunked_body_over_the_limit_gets_413_without_a_traceback(service) -> None:
    """Hostile: well-framed chunks adding up to more than max_request_bytes."""
    head = "POST /sign/admin HTTP/1.1\r\nTransfer-Encoding: chunked"
    assert raw_status(service, head, chunked(b"a" * (MAX_BODY + 1))) == 413
    assert raw_status(service, head, chunked(b"a" * (MAX_BODY - 1))) == 400  # not JSON: read
    assert_no_traceback(service)


def test_a_json_integer_of_4301_digits_gets_400_without_a_traceback(service) -> None:
    """Hostile: Python refuses to convert an integer this long; that must not become a 500."""
    body = b'{"hash_algorithm":"sha2-512","input":"aGVsbG8=","n":' + b"9" * 4301 + b"}"
    head = f"POST /sign/admin HTTP/1.1\r\nContent-Length: {len(body)}"
    assert raw_status(service, head, body) == 400
    assert_no_traceback(service)


def test_a_script_name_header_from_loopback_does_not_remap_the_path(service) -> None:
    """Hostile: SCRIPT_NAME: /keys would turn /keys/admin into /admin under gunicorn's default."""
    response = requests.get(
        f"{service.url}/keys/admin",
        headers={"Authorization": service.tokens["admin"], "SCRIPT_NAME": "/keys"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert "publickey" in response.json()


def test_a_token_sent_in_the_query_string_lands_in_no_log(service) -> None:
    """Hostile: ?token= is not how the token is sent, but a client may do it; no log keeps it."""
    secret = "query-secret-4f1d9c"
    response = requests.get(f"{service.url}/keys/admin?token={secret}", timeout=10)
    assert response.status_code == 401
    assert " /keys/admin HTTP/1.1" in service.log.read_text()  # the access log is on
    audit_logs = list(service.home.home.rglob("*.log")) + list(service.home.home.rglob("*.jsonl"))
    for log in [service.log, *audit_logs]:
        assert secret not in log.read_text(errors="replace"), log
