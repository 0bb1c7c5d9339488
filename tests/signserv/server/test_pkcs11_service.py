"""An HSM-backed key behind real gunicorn: the contract, its checker, a foreign client, failures."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keystore.pkcs11.backend import WRAPPING_KEY_LABEL
from signserv.contract import HASH_ALGORITHM, decode_public_key

from ...conftest import RunningService, SignservHome, make_home
from ...softhsm import SoftHsm, init_softhsm

INDEPENDENT_CLIENT = Path(__file__).parents[1] / "independent_client" / "tke_like_client.mjs"
# Command blocks the client signs at once beside its 4 fixed inputs: 7 first requests together,
# all admitted even by one cold worker (one unlocks; up to cold_request_slots, 6, wait for it).
# More would be refused 503 "busy" with Retry-After, by design.
INDEPENDENT_CLIENT_COMMAND_BLOCKS = 3


def create(home: SignservHome, name: str, *backend: str) -> str:
    created = json.loads(home.run("keys", "create", name, *backend, "--json").stdout)
    return str(created["token"])


def sign(service: RunningService, name: str, token: str) -> requests.Response:
    return requests.post(
        f"{service.url}/sign/{name}",
        json={"input": "aGVsbG8=", "hash_algorithm": HASH_ALGORITHM},
        headers={"Authorization": token},
        timeout=30,
    )


def require_node() -> str:
    """The ``node`` executable; skips without it, except in CI, where `.ci/run` installs it."""
    node = shutil.which("node")
    if node is not None:
        return node
    if os.environ.get("CI") == "true":
        pytest.fail("CI must run the independent JavaScript client: install nodejs")
    pytest.skip("Node.js is not installed")


def public_key(service: RunningService, name: str, token: str) -> ec.EllipticCurvePublicKey:
    answer = requests.get(
        f"{service.url}/keys/{name}", headers={"Authorization": token}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    point = decode_public_key(base64.b64decode(answer.json()["publickey"]))
    return ec.EllipticCurvePublicNumbers(point.x, point.y, ec.SECP521R1()).public_key()


def verified_signature(response: requests.Response, key: ec.EllipticCurvePublicKey) -> None:
    """Assert ``response`` is a 200 whose signature verifies over the test input (b"hello")."""
    assert response.status_code == 200, response.text
    signature = base64.b64decode(response.json()["signature"])
    key.verify(signature, b"hello", ec.ECDSA(hashes.SHA512()))


@pytest.fixture
def hsm_home(softhsm: SoftHsm, tmp_path: Path) -> SignservHome:
    return make_home(tmp_path / "signserv", softhsm.config())


def test_an_hsm_key_passes_signserv_check_and_the_independent_client(
    hsm_home: SignservHome, start_signserv: Callable[..., RunningService], tmp_path: Path
) -> None:
    tokens = {
        "hsm-1": create(hsm_home, "hsm-1", "--backend", "pkcs11"),
        "hsm-2": create(hsm_home, "hsm-2", "--backend", "pkcs11"),
        "soft": create(hsm_home, "soft"),
    }
    listed = json.loads(hsm_home.run("keys", "list", "--json").stdout)
    assert {key["name"]: key["backend"] for key in listed} == {
        "hsm-1": "pkcs11",
        "hsm-2": "pkcs11",
        "soft": "software",
    }
    shown = json.loads(hsm_home.run("keys", "show", "hsm-1", "--json").stdout)
    assert "PKCS#11" in shown["location"]
    service = start_signserv(hsm_home)
    assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200
    for index, name in enumerate(("hsm-1", "hsm-2"), start=1):
        (tmp_path / f"token-{index}").write_text(tokens[name])
    checked = hsm_home.run(
        "check", service.url,
        "--key", "hsm-1", "--token-file", str(tmp_path / "token-1"),
        "--key2", "hsm-2", "--token2-file", str(tmp_path / "token-2"),
        "--json",
    )  # fmt: skip
    assert json.loads(checked.stdout)["ok"] is True
    node = require_node()
    for name in ("hsm-1", "soft"):  # both kinds side by side, 16 concurrent requests each
        result = subprocess.run(
            [
                node,
                str(INDEPENDENT_CLIENT),
                service.url,
                name,
                tokens[name],
                str(INDEPENDENT_CLIENT_COMMAND_BLOCKS),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def test_a_wrong_pin_means_503_and_not_ready_until_it_is_fixed(
    softhsm: SoftHsm, tmp_path: Path, start_signserv: Callable[..., RunningService]
) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin_file.read_text())
    home = make_home(
        tmp_path / "signserv", softhsm.config(use_for_new_keys=True, pin_file=pin_file)
    )
    token = create(home, "hsm")
    software_token = create(home, "soft", "--backend", "software")
    pin_file.write_text("wrong-pin-000\n")
    service = start_signserv(home, workers=1)
    assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 503
    refused = sign(service, "hsm", token)
    assert refused.status_code == 503
    assert sign(service, "soft", software_token).status_code == 200  # never a fallback, no outage
    pin_file.write_text(softhsm.pin_file.read_text())
    assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200
    assert sign(service, "hsm", token).status_code == 200
    log = service.log.read_text()
    assert "wrong-pin-000" not in log and "refused the user PIN" in log


def test_delete_of_an_hsm_key_through_the_cli_and_a_missing_module(
    hsm_home: SignservHome, softhsm: SoftHsm, tmp_path: Path
) -> None:
    create(hsm_home, "gone", "--backend", "pkcs11")
    hsm_home.run("keys", "delete", "gone", "--yes")
    assert json.loads(hsm_home.run("keys", "list", "--json").stdout) == []
    broken = make_home(
        tmp_path / "broken",
        softhsm.config().replace(str(softhsm.module), "/nonexistent/libpkcs11.so"),
    )
    failed = broken.run("keys", "create", "k", "--backend", "pkcs11", check=False)
    assert failed.returncode != 0
    assert "/nonexistent/libpkcs11.so does not exist" in failed.stderr


def test_a_pin_in_the_yaml_is_refused_and_points_to_the_pin_file(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "signserv")
    home.config.write_text(
        home.config.read_text() + softhsm.config() + '  user_pin: "pin-in-yaml-0123"\n'
    )
    refused = home.run("keys", "list", check=False)
    assert refused.returncode != 0
    assert "'pkcs11.user_pin'" in refused.stderr
    assert "pkcs11.user_pin_file" in refused.stderr and "SIGNSERV_PKCS11_PIN" in refused.stderr
    assert "pin-in-yaml-0123" not in refused.stdout + refused.stderr


BURST_THREADS = 16


def sign_when_admitted(service: RunningService, name: str, token: str) -> requests.Response:
    """Sign, trying again after ``Retry-After`` (at most 10 times) while the worker's cold path
    is full: a burst of first requests beyond it is refused with 503 "busy" by design."""
    for _ in range(10):
        answer = sign(service, name, token)
        if answer.status_code != 503 or answer.json().get("error") != "busy":
            return answer
        time.sleep(float(answer.headers["Retry-After"]))
    return answer


def sign_in_a_burst(
    service: RunningService, tokens: dict[str, str], per_key: int
) -> list[tuple[str, requests.Response]]:
    """``per_key`` requests for every key, from BURST_THREADS threads at once."""
    names = [name for name in tokens for _ in range(per_key)]
    with ThreadPoolExecutor(BURST_THREADS) as pool:
        answers = pool.map(lambda name: sign_when_admitted(service, name, tokens[name]), names)
        return list(zip(names, answers, strict=True))


def wait_for_readiness(service: RunningService, status: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if requests.get(f"{service.url}/readyz", timeout=10).status_code == status:
            return
        time.sleep(0.1)  # poll interval, not a wait for an event
    raise AssertionError(f"/readyz did not answer {status} within {seconds} s")


def test_hsm_keys_from_16_threads_over_gunicorn_through_a_token_removal(
    hsm_home: SignservHome,
    softhsm: SoftHsm,
    start_signserv: Callable[..., RunningService],
    tmp_path: Path,
) -> None:
    """Two HSM keys and a software key under load; the token leaves and returns meanwhile."""
    tokens = {name: create(hsm_home, name, "--backend", "pkcs11") for name in ("load-1", "load-2")}
    tokens["soft"] = create(hsm_home, "soft")
    service = start_signserv(hsm_home)  # 2 workers of 16 threads
    keys = {name: public_key(service, name, token) for name, token in tokens.items()}
    for name, response in sign_in_a_burst(service, tokens, per_key=32):
        verified_signature(response, keys[name])

    during: list[tuple[str, requests.Response]] = []
    stop = threading.Event()

    def keep_signing() -> None:
        for _ in range(200):  # bounded: about 20 s of bursts at most
            if stop.is_set():
                return
            during.extend(sign_in_a_burst(service, tokens, per_key=4))

    load = threading.Thread(target=keep_signing)
    load.start()
    (token_directory,) = softhsm.token_directory.iterdir()
    away = tmp_path / "token-away"
    try:
        shutil.move(token_directory, away)
        try:
            wait_for_readiness(service, 503)
            deadline = time.monotonic() + 20
            while not any(response.status_code == 503 for _, response in during):
                assert time.monotonic() < deadline, "no HSM request was refused while it was away"
                time.sleep(0.1)  # poll interval, not a wait for an event
        finally:
            shutil.move(away, token_directory)
        wait_for_readiness(service, 200)
    finally:
        stop.set()
        load.join(60)
    assert not load.is_alive()

    assert during, "no request ran while the token left and returned"
    for name, response in during:
        if response.status_code == 200 or name == "soft":  # never a fallback, never an outage
            verified_signature(response, keys[name])
        else:
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "keystore_unavailable"
    for name, response in sign_in_a_burst(service, tokens, per_key=32):
        verified_signature(response, keys[name])  # every worker recovered
    log = service.log.read_text()
    assert log.count("Booting worker") == 2 and "was sent SIG" not in log  # no worker died
    not_ready = [line for line in log.splitlines() if line.startswith("not ready:")]
    assert not_ready and all("token with label 'signserv-tests'" in line for line in not_ready)


def test_an_imported_key_and_a_backup_restore_onto_the_same_token(
    hsm_home: SignservHome, start_signserv: Callable[..., RunningService], tmp_path: Path
) -> None:
    """A restored HSM key signs; one whose wrapping key was destroyed since is a clear 503."""
    private_key = ec.generate_private_key(ec.SECP521R1())
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    imported = json.loads(
        hsm_home.run(
            "keys", "import", "imported", "--pem", str(pem), "--backend", "pkcs11", "--json"
        ).stdout
    )
    doomed = create(hsm_home, "doomed", "--backend", "pkcs11")
    backup = tmp_path / "keystore-backup.db"
    hsm_home.run("backup", str(backup))
    hsm_home.run("keys", "delete", "doomed", "--yes")  # destroys its wrapping key
    restored = hsm_home.run("restore", str(backup), "--force")
    assert "restored 2 keys" in restored.stdout + restored.stderr
    listed = json.loads(hsm_home.run("keys", "list", "--json").stdout)
    assert {key["name"]: key["backend"] for key in listed} == {
        "doomed": "pkcs11",
        "imported": "pkcs11",
    }

    service = start_signserv(hsm_home, workers=1)
    served = public_key(service, "imported", imported["token"])
    assert served.public_numbers() == private_key.public_key().public_numbers()  # same SKI
    verified_signature(sign(service, "imported", imported["token"]), served)
    refused = sign(service, "doomed", doomed)
    assert refused.status_code == 503
    assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200  # one key's fault
    log = service.log.read_text()
    assert "holds no wrapping key" in log and WRAPPING_KEY_LABEL in log
    assert "Retrying will not help" in log


def test_a_full_token_is_named_and_stores_nothing(softhsm: SoftHsm, tmp_path: Path) -> None:
    """A token on a full disk (a 32 KiB tmpfs, in a private mount namespace) refuses new keys."""
    unshare = require_private_mounts()
    full = init_softhsm(tmp_path / "small-hsm")
    seed = tmp_path / "token-seed"
    shutil.copytree(full.token_directory, seed, symlinks=True)
    home = make_home(tmp_path / "signserv", full.config(use_for_new_keys=True))
    script = (
        f"mount -t tmpfs -o size=32k tmpfs {full.token_directory} && "
        f"cp -a {seed}/. {full.token_directory}/ || exit 2; "
        "for i in $(seq 1 40); do "
        f"{sys.executable} -m signserv keys create key-$i || exit 0; done; exit 3"
    )
    filled = subprocess.run(
        [unshare, "--mount", "--map-root-user", "sh", "-c", script],
        env={**home.env(), "SOFTHSM2_CONF": str(full.conf)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert filled.returncode == 0, f"the token never filled up:\n{filled.stderr}"
    assert "cannot store another object" in filled.stderr
    assert "the token is full or its storage cannot be written" in filled.stderr
    stored = json.loads(home.run("keys", "list", "--json").stdout)
    failed_at = len(stored) + 1
    assert 0 < len(stored) < 40
    assert f"key-{failed_at}" not in {key["name"] for key in stored}


def require_private_mounts() -> str:
    """`unshare`, able to mount a tmpfs in a private mount namespace (a user namespace's root)."""
    unshare = shutil.which("unshare")
    works = (
        unshare is not None
        and subprocess.run(
            [unshare, "--mount", "--map-root-user", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode
        == 0
    )
    if unshare is not None and works:
        return unshare
    reason = "needs util-linux unshare and private mount namespaces (user namespaces)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the full-token test: {reason}")
    pytest.skip(reason)
