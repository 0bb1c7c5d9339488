"""`signserv serve` and `demo` on their address: a busy port is a clear error, never a retry loop."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from signserv.server.gunicorn_runner import check_bind_address

from ..conftest import RunningService, SignservHome, free_port, make_home


@pytest.fixture
def home(tmp_path) -> SignservHome:
    return make_home(tmp_path)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another process-like listener already holds."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_in_use_is_an_error_naming_it_with_a_bind_hint(
    home: SignservHome, busy_port: int, command: str
) -> None:
    started = time.monotonic()
    result = home.run(command, "--bind", f"127.0.0.1:{busy_port}", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{busy_port}: ")
    assert "already in use" in result.stderr and "--bind HOST:PORT" in result.stderr
    assert "serving on" not in result.stdout
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 5, "no gunicorn retry loop before the error"


def test_demo_on_a_port_in_use_creates_no_key(home: SignservHome, busy_port: int) -> None:
    """The demo token is printed once: not for a key whose service never started."""
    home.run("demo", "--bind", f"127.0.0.1:{busy_port}", check=False)
    assert "no keys" in home.run("keys", "list").stdout


def test_an_address_that_is_not_host_port_is_refused(home: SignservHome) -> None:
    result = home.run("serve", "--bind", "127.0.0.1:http-alt", check=False)
    assert result.returncode == 1
    assert "error: cannot listen on 127.0.0.1:http-alt: " in result.stderr
    assert "not a valid port number" in result.stderr


def test_serving_on_is_printed_once_the_service_answers(
    home: SignservHome, start_signserv: Callable[..., RunningService]
) -> None:
    service = start_signserv(home)
    assert f"serving on {service.url}  (export TKE_SIGNSERV_URL={service.url})" in (
        service.log.read_text()
    )


def test_a_free_port_passes_the_check_and_stays_free() -> None:
    """The check itself does not hold the port: serve binds it right after."""
    port = free_port()
    check_bind_address(f"127.0.0.1:{port}")
    check_bind_address(f"127.0.0.1:{port}")
