"""A fake signing service whose behaviour is assembled from parts, so each test can break one.

The default parts follow the contract; the hostile parts are named for what they do wrong
(``spki_public_key``, ``raw_r_s_signature``...). Servers bind 127.0.0.1 on a free port, are
polled for readiness, and are stopped by the test that started them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from signserv import der
from signserv.contract import PublicPoint, encode_public_key

PublicKeyEncoder = Callable[[ec.EllipticCurvePrivateKey], bytes]
Signer = Callable[[ec.EllipticCurvePrivateKey, bytes], bytes]

UNAUTHORIZED = {"error": "unauthorized", "message": "missing or wrong token"}


def contract_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """DER SEQUENCE{INTEGER X, INTEGER Y}, as the contract wants."""
    numbers = key.public_key().public_numbers()
    return encode_public_key(PublicPoint(x=numbers.x, y=numbers.y))


def spki_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A SubjectPublicKeyInfo, which the TKE client refuses."""
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def padded_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """X and Y as INTEGERs with a needless leading 00 byte: not minimal DER, Go refuses it."""
    numbers = key.public_key().public_numbers()
    padded = [
        der.encode_tlv(der.TAG_INTEGER, bytes(1) + value.to_bytes(66, "big"))
        for value in (numbers.x, numbers.y)
    ]
    return der.encode_sequence(*padded)


def off_curve_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Well-formed DER of a point that is not on P-521 (Y off by one)."""
    numbers = key.public_key().public_numbers()
    return encode_public_key(PublicPoint(x=numbers.x, y=numbers.y + 1))


def trailing_bytes_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The right SEQUENCE followed by stray bytes, which the Go client silently ignores."""
    return contract_public_key(key) + b"\x00\x00"


def changing_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A different key on every call: the SKI, the administrator's identity, keeps changing."""
    return contract_public_key(ec.generate_private_key(ec.SECP521R1()))


def contract_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """DER ECDSA over SHA-512 of the input, random nonce."""
    return key.sign(data, ec.ECDSA(hashes.SHA512()))


def raw_r_s_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """r||s, 66 bytes each (IEEE P1363) instead of DER."""
    r, s = decode_dss_signature(contract_signature(key, data))
    return r.to_bytes(66, "big") + s.to_bytes(66, "big")


def sha256_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA over SHA-256 instead of SHA-512."""
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def double_hashed_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA over SHA-512(SHA-512(input)): the service pre-hashes before signing."""
    return contract_signature(key, hashlib.sha512(data).digest())


def crashing_on_empty_input(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """A service that fails with a 500 when asked to sign no bytes."""
    if not data:
        raise ValueError("nothing to sign")
    return contract_signature(key, data)


def deterministic_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """RFC 6979 nonces: the same input always gives the same signature."""
    return key.sign(data, ec.ECDSA(hashes.SHA512(), deterministic_signing=True))


@dataclass(frozen=True)
class Behaviour:
    """How the fake service answers; every default follows the contract."""

    public_key: PublicKeyEncoder = contract_public_key
    signature: Signer = contract_signature
    accepts_any_token: bool = False
    unknown_key_status: int = 401
    input_field: str = "input"
    checks_hash_algorithm: bool = True
    serves_doubled_slash: bool = True
    urlsafe_base64: bool = False
    echoes_authorization: bool = False
    locks_out_after: int = 0  # failed authentications per key before 429; 0 never locks
    key_scalars: tuple[int, int] | None = None  # admin1's and admin2's keys; None: random


BEHAVIOURS = {
    "conforming": Behaviour(),
    # public key
    "spki_public_key": Behaviour(public_key=spki_public_key),
    "padded_public_key": Behaviour(public_key=padded_public_key),
    "trailing_bytes_public_key": Behaviour(public_key=trailing_bytes_public_key),
    "off_curve_public_key": Behaviour(public_key=off_curve_public_key),
    "changing_public_key": Behaviour(public_key=changing_public_key),
    # Fixed keys: a random key's 138-byte DER sometimes has no '+' or '/' in base64 and needs
    # no padding, so URL-safe unpadded would equal standard. Scalar 1 (§10 vector 1) ends in
    # "UA==" and scalar 2 has '+' and '/', so the flaw always shows.
    "urlsafe_unpadded_base64": Behaviour(urlsafe_base64=True, key_scalars=(1, 2)),
    # signing
    "raw_r_s_signature": Behaviour(signature=raw_r_s_signature),
    "sha256_signature": Behaviour(signature=sha256_signature),
    "double_hashed_signature": Behaviour(signature=double_hashed_signature),
    "deterministic_signature": Behaviour(signature=deterministic_signature),
    "crashing_on_empty_input": Behaviour(signature=crashing_on_empty_input),
    "reads_only_inputs": Behaviour(input_field="inputs"),
    # authentication
    "accepts_any_token": Behaviour(accepts_any_token=True),
    "unknown_key_is_404": Behaviour(unknown_key_status=404),
    "echoes_authorization": Behaviour(echoes_authorization=True),
    "locks_out_after_three_failures": Behaviour(locks_out_after=3),
    # robustness
    "ignores_hash_algorithm": Behaviour(checks_hash_algorithm=False),
    "redirects_doubled_slash": Behaviour(serves_doubled_slash=False),
}


@dataclass
class FakeService:
    """A running fake: its URL, its keys' tokens, and each (key name, Authorization) received."""

    url: str
    tokens: dict[str, str]
    keys: dict[str, ec.EllipticCurvePrivateKey]
    authorizations: list[tuple[str, str | None]] = field(default_factory=list)


def _json(document: object, status: int = 200) -> Response:
    return Response(json.dumps(document), status=status, mimetype="application/json")


def _base64(data: bytes, behaviour: Behaviour) -> str:
    if behaviour.urlsafe_base64:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")
    return base64.b64encode(data).decode()


def _application(behaviour: Behaviour, service: FakeService) -> Callable[..., object]:
    lock = threading.Lock()
    failures = dict.fromkeys(service.keys, 0)

    def refusal(name: str, authorization: str | None) -> Response | None:
        if name not in service.keys:
            return _json(
                {"error": "not_found"} if behaviour.unknown_key_status == 404 else UNAUTHORIZED,
                behaviour.unknown_key_status,
            )
        if behaviour.locks_out_after and failures[name] >= behaviour.locks_out_after:
            return Response(status=429, headers={"Retry-After": "60"})
        if behaviour.accepts_any_token or authorization == service.tokens[name]:
            return None
        failures[name] += 1
        if behaviour.echoes_authorization:
            return _json({"error": "unauthorized", "message": f"{authorization} is wrong"}, 401)
        return _json(UNAUTHORIZED, 401)

    def sign(name: str, body: bytes) -> Response:
        try:
            document = json.loads(body)
        except ValueError:
            return _json({"error": "bad_request", "message": "body is not JSON"}, 400)
        if behaviour.checks_hash_algorithm and document.get("hash_algorithm") != "sha2-512":
            return _json({"error": "bad_request", "message": "unsupported hash_algorithm"}, 400)
        field_name = behaviour.input_field
        if field_name not in document:
            return _json({"error": "bad_request", "message": f"{field_name} is required"}, 400)
        try:
            data = base64.b64decode(document[field_name], validate=True)
        except ValueError:
            return _json({"error": "bad_request", "message": "input is not base64"}, 400)
        signature = behaviour.signature(service.keys[name], data)
        return _json({"signature": _base64(signature, behaviour)})

    def application(environ: dict[str, object], start_response: Callable[..., object]) -> object:
        try:
            response = respond(Request(environ))
        except ValueError:
            response = _json({"error": "internal"}, 500)
        return response(environ, start_response)

    def respond(request: Request) -> Response:
        # PATH_INFO loses a leading "//"; the raw request target keeps it.
        path = str(request.environ["REQUEST_URI"]).partition("?")[0]
        if path.startswith("//"):
            if not behaviour.serves_doubled_slash:
                return Response(status=308, headers={"Location": path[1:]})
            path = path[1:]
        route, _, name = path.lstrip("/").partition("/")
        if route == "healthz":
            return _json({"status": "ok"})
        authorization = request.headers.get("Authorization")
        with lock:
            service.authorizations.append((name, authorization))
        response = refusal(name, authorization)
        if response is None and route == "keys" and request.method == "GET":
            encoded = behaviour.public_key(service.keys[name])
            response = _json({"publickey": _base64(encoded, behaviour)})
        elif response is None and route == "sign" and request.method == "POST":
            response = sign(name, request.get_data())
        elif response is None:
            response = _json({"error": "not_found"}, 404)
        return response

    return application


class VerbatimPathHandler(WSGIRequestHandler):
    """Keeps a leading ``//``, which http.server collapses (the TKE client sends it, §1.2)."""

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if parsed:
            self.path = self.requestline.split()[1]
        return parsed

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Stay quiet: the checker's report is the evidence these tests read."""


def _wait_until_ready(url: str) -> None:
    for _ in range(100):
        try:
            requests.get(f"{url}/healthz", timeout=1).raise_for_status()
            return
        except requests.ConnectionError:
            continue
    raise AssertionError(f"fake service at {url} never became ready")


def _keys(behaviour: Behaviour) -> list[ec.EllipticCurvePrivateKey]:
    """The fake's two keys: fresh ones, or those of the behaviour's fixed scalars."""
    if behaviour.key_scalars is None:
        return [ec.generate_private_key(ec.SECP521R1()) for _ in range(2)]
    return [ec.derive_private_key(scalar, ec.SECP521R1()) for scalar in behaviour.key_scalars]


@pytest.fixture
def start_fake_service() -> Iterator[Callable[..., FakeService]]:
    """Factory: start a fake service by behaviour name; every one stops when the test ends."""
    servers: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(behaviour: str = "conforming") -> FakeService:
        chosen = BEHAVIOURS[behaviour]
        service = FakeService(
            url="",
            tokens={
                "admin1": "token-of-admin1-" + "a" * 32,
                "admin2": "token-of-admin2-" + "b" * 32,
            },
            keys=dict(zip(("admin1", "admin2"), _keys(chosen), strict=True)),
        )
        server = make_server(
            "127.0.0.1",
            0,
            _application(chosen, service),
            threaded=True,
            request_handler=VerbatimPathHandler,
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        service.url = f"http://127.0.0.1:{server.server_port}"
        _wait_until_ready(service.url)
        return service

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join()
        server.server_close()
