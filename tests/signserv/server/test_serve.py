"""The contract end to end: real gunicorn on 127.0.0.1, real HTTP, several workers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from signserv import contract

from ...conftest import FAST_CONFIG, RunningService, SignservHome, free_port, make_home

INDEPENDENT_CLIENT = Path(__file__).parents[1] / "independent_client" / "tke_like_client.mjs"
# Command blocks the client signs at once beside its 4 fixed inputs: 7 first requests together,
# all admitted even by one cold worker (one unlocks; up to cold_request_slots, 6, wait for it).
# More would be refused 503 "busy" with Retry-After, by design.
INDEPENDENT_CLIENT_COMMAND_BLOCKS = 3


def go_client_headers(token: str) -> dict[str, str]:
    """The headers the Go TKE client sends, byte for byte (TKE-REFERENCE §1.3)."""
    return {
        "Authorization": token,
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": "Go-http-client/1.1",
        "Accept-Encoding": "gzip",
    }


def fetch_public_key(
    service: RunningService, name: str, base: str | None = None
) -> ec.EllipticCurvePublicKey:
    response = requests.get(
        f"{base or service.url}/keys/{name}",
        headers=go_client_headers(service.tokens[name]),
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 200, response.text
    point = contract.decode_public_key(
        contract.b64decode_strict(response.json()["publickey"], what="pk")
    )
    return ec.EllipticCurvePublicNumbers(point.x, point.y, ec.SECP521R1()).public_key()


def sign_like_go(service: RunningService, name: str, data: bytes) -> bytes:
    response = requests.post(
        f"{service.url}/sign/{name}",
        data=contract.build_sign_request_body(data),
        headers=go_client_headers(service.tokens[name]),
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 200, response.text
    return contract.b64decode_strict(response.json()["signature"], what="signature")


def test_public_key_ski_matches_keys_show(signserv_server: RunningService) -> None:
    key = fetch_public_key(signserv_server, "key-a")
    numbers = key.public_numbers()
    ski = contract.PublicPoint(numbers.x, numbers.y).ski_hex()
    shown = json.loads(signserv_server.home.run("keys", "show", "key-a", "--json").stdout)
    assert shown["ski"] == ski


@pytest.mark.parametrize(
    "data",
    [bytes(100), b"hello", hashlib.sha512(b"tbs").digest(), bytes(range(256)) * 3],
    ids=["probe", "hello", "certificate-hash", "command-block"],
)
def test_signatures_verify_over_sha512_of_the_input(signserv_server, data: bytes) -> None:
    signature = sign_like_go(signserv_server, "key-a", data)
    fetch_public_key(signserv_server, "key-a").verify(signature, data, ec.ECDSA(hashes.SHA512()))


def test_trailing_slash_base_url_is_served_directly(signserv_server) -> None:
    """TKE_SIGNSERV_URL=http://host:port/ makes the client request //keys/<name> (§1.2)."""
    fetch_public_key(signserv_server, "key-a", base=signserv_server.url + "/")


def test_keys_are_isolated_by_token(signserv_server) -> None:
    response = requests.get(
        f"{signserv_server.url}/keys/key-a",
        headers=go_client_headers(signserv_server.tokens["key-b"]),
        timeout=10,
    )
    assert response.status_code == 401


def test_unknown_key_and_wrong_token_are_indistinguishable_over_http(signserv_server) -> None:
    wrong = "wrong-token-000000000000000"
    answers = [
        requests.post(
            f"{signserv_server.url}/sign/{name}",
            data=contract.build_sign_request_body(b"x"),
            headers=go_client_headers(wrong),
            timeout=10,
        )
        for name in ("key-a", "no-such-key")
    ]
    assert [answer.status_code for answer in answers] == [401, 401]
    assert answers[0].content == answers[1].content


def test_concurrent_signatures_across_workers_all_verify(signserv_server) -> None:
    public_key = fetch_public_key(signserv_server, "key-a")
    messages = [f"concurrent command {index}".encode() for index in range(48)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        signatures = list(
            pool.map(lambda data: sign_like_go(signserv_server, "key-a", data), messages)
        )
    for data, signature in zip(messages, signatures, strict=True):
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA512()))
    assert len(set(signatures)) == len(signatures)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_independent_javascript_client_parses_and_verifies(signserv_server) -> None:
    """A client written in another language, acting like the Go TKE client, under concurrency."""
    for name in ("key-a", "key-b"):
        result = subprocess.run(
            [
                str(shutil.which("node")),
                str(INDEPENDENT_CLIENT),
                signserv_server.url,
                name,
                signserv_server.tokens[name],
                str(INDEPENDENT_CLIENT_COMMAND_BLOCKS),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        shown = json.loads(signserv_server.home.run("keys", "show", name, "--json").stdout)
        assert report == {"ski": shown["ski"], "verified": 4 + INDEPENDENT_CLIENT_COMMAND_BLOCKS}


def test_disable_takes_effect_in_every_worker(start_signserv, tmp_path, backend_config) -> None:
    home = make_home(tmp_path / "disable", backend_config)
    token = home.create_key("k")
    service = start_signserv(home)
    service.tokens["k"] = token
    for _ in range(6):  # warm the unlock cache of both workers
        sign_like_go(service, "k", b"warm")
    home.run("keys", "disable", "k")
    statuses = {
        requests.get(
            f"{service.url}/keys/k", headers=go_client_headers(token), timeout=10
        ).status_code
        for _ in range(6)
    }
    assert statuses == {403}


def test_serve_refuses_to_start_without_the_master_key(tmp_path) -> None:
    home = make_home(tmp_path / "no-master")
    (home.home / "master.key").unlink()
    result = home.run("serve", "--bind", "127.0.0.1:1", check=False)
    assert result.returncode == 1
    assert "no master key file" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_to_start_on_a_damaged_keystore(tmp_path) -> None:
    home = make_home(tmp_path / "damaged")
    keystore = home.home / "keystore.db"
    keystore.write_bytes(keystore.read_bytes()[:200])
    result = home.run("serve", "--bind", "127.0.0.1:1", check=False)
    assert result.returncode == 1
    assert "damaged" in result.stderr or "not a signserv keystore" in result.stderr


def test_server_log_holds_no_token(start_signserv, tmp_path, backend_config) -> None:
    """With the access log on (it is off by default), it names the request but not the token."""
    home: SignservHome = make_home(
        tmp_path / "log", backend_config + "server:\n  access_log: true\n"
    )
    token = home.create_key("k")
    service = start_signserv(home)
    service.tokens["k"] = token
    sign_like_go(service, "k", b"logged?")
    requests.get(f"{service.url}/keys/k", headers=go_client_headers(token + "x"), timeout=10)
    service.stop()
    assert token not in service.log.read_text()
    assert "/sign/k" in service.log.read_text()


def run_demo_until_healthy(home: SignservHome, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start `signserv demo` (the README's run command) and wait until it serves."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "signserv", "demo", "--bind", f"127.0.0.1:{port}"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=home.env(),
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.05)  # poll interval while gunicorn binds
    process.kill()
    raise AssertionError(f"signserv demo did not serve:\n{log.read_text()}")


def test_demo_prints_a_working_token_once_then_serves_the_existing_key(tmp_path) -> None:
    directory = tmp_path / "demo"
    directory.mkdir()
    config = directory / "config.yaml"
    config.write_text(FAST_CONFIG)
    home = SignservHome(home=directory / "home", config=config)
    for attempt in ("first", "second"):
        port = free_port()
        log = directory / f"{attempt}.log"
        process = run_demo_until_healthy(home, port, log)
        try:
            output = log.read_text()
            if attempt == "first":
                token = re.search(r"token: (\S+)", output).group(1)
                assert f'SIGNSERVKEYS: [{{"key": "demo-admin", "token": "{token}"}}]' in output
                answer = requests.post(
                    f"http://127.0.0.1:{port}/sign/demo-admin",
                    data=contract.build_sign_request_body(b"demo"),
                    headers={"Authorization": token, "Content-Type": "application/json"},
                    timeout=10,
                )
                assert answer.status_code == 200
            else:
                assert "already exists" in output and token not in output
                assert requests.get(
                    f"http://127.0.0.1:{port}/keys/demo-admin",
                    headers={"Authorization": token},
                    timeout=10,
                ).ok
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
