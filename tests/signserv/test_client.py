"""SigningServiceClient against honest and hostile services on 127.0.0.1; SIGNSERVKEYS."""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import string
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signserv import contract, der
from signserv.client import (
    ClientError,
    InvalidPublicKey,
    InvalidServiceResponse,
    InvalidServiceSignature,
    InvalidServiceURL,
    SignatureDoesNotVerify,
    SigningServiceClient,
    SigningServiceRedirected,
    SigningServiceRefused,
    SigningServiceUnreachable,
    SignServKey,
    SignservKeysError,
    TokenUnavailable,
    UnusableKeyName,
    load_signservkeys,
    resolve_token,
)
from signserv.secret import MASK, Secret

from ..tls_certificates import write_self_signed_localhost

TOKEN = Secret("tok-abc")
G_PUBLIC_KEY_B64 = (
    "MIGIAkIAxoWOBrcEBOnNnj7LZiOVtEKcZIE5BT+1Ifgor2BrTT26oUted+/nWSj+HcEnov+o3jNIs8GFakKb+X5+"
    "McLlvWYCQgEYOSlqeJo7wARcil+0LH0b2Zj1RElXm0RoF6+9Fyc+ZiyX7nKZXvQmQMVQuQE/rQdhNTxwhqJywkCI"
    "vpR2n9FmUA=="
)
G_SKI = "866323b2e29c6eddaba0acbdb76df7b5bf56518399b1b4b0833768297e0d68f0"
PROBE_INPUT_B64 = "A" * 134 + "=="


# --- fake services ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapturedRequest:
    """What reached the fake service: the raw request-line path, headers and body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]
Responder = Callable[[CapturedRequest], Reply]


@dataclass
class FakeService:
    """A scripted HTTP service bound to a free port on 127.0.0.1."""

    url: str
    captured: list[CapturedRequest] = field(default_factory=list)


def _handler_for(responder: Responder, captured: list[CapturedRequest]) -> type:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = CapturedRequest(
                method=self.command,
                path=self.requestline.split(" ")[1],
                headers={name.lower(): value for name, value in self.headers.items()},
                body=self.rfile.read(length),
            )
            captured.append(request)
            status, headers, body = responder(request)
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

    return Handler


class QuietServer(ThreadingHTTPServer):
    """A fake service that does not print a traceback when a client hangs up on it."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or refuse TLS close the connection: expected here."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            super().handle_error(request, client_address)


def serve(
    responder: Responder, servers: list[ThreadingHTTPServer], tls: ssl.SSLContext | None = None
) -> FakeService:
    """Start one fake service on a free 127.0.0.1 port (HTTPS when given a TLS context)."""
    captured: list[CapturedRequest] = []
    server = QuietServer(("127.0.0.1", 0), _handler_for(responder, captured))
    servers.append(server)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    scheme = "http" if tls is None else "https"
    return FakeService(f"{scheme}://127.0.0.1:{server.server_address[1]}", captured)


def stop(servers: list[ThreadingHTTPServer]) -> None:
    """Shut the servers down and close their sockets."""
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def start_service() -> Iterator[Callable[..., FakeService]]:
    """Start fake services for one test; every one is stopped when the test ends."""
    servers: list[ThreadingHTTPServer] = []
    yield lambda responder, tls=None: serve(responder, servers, tls)
    stop(servers)


def json_reply(document: object, status: int = 200) -> Reply:
    """A JSON answer with the given status."""
    return status, {"Content-Type": "application/json"}, json.dumps(document).encode()


def point_of(key: ec.EllipticCurvePrivateKey) -> contract.PublicPoint:
    """The contract's view of a key's public point."""
    numbers = key.public_key().public_numbers()
    return contract.PublicPoint(x=numbers.x, y=numbers.y)


def signing_service(
    advertised: ec.EllipticCurvePrivateKey,
    *,
    signer: ec.EllipticCurvePrivateKey | None = None,
    publickey_der: bytes | None = None,
    encode_signature: Callable[[bytes], bytes] = lambda signature: signature,
    b64: Callable[[bytes], str] = contract.b64encode,
) -> Responder:
    """A service that advertises one key; each hostile twist is one keyword argument."""
    signing_key = signer or advertised
    public_der = publickey_der or contract.encode_public_key(point_of(advertised))

    def respond(request: CapturedRequest) -> Reply:
        if request.method == "GET":
            return json_reply({"publickey": b64(public_der)})
        data = contract.parse_sign_request(request.body)
        signature = signing_key.sign(data, ec.ECDSA(hashes.SHA512()))
        return json_reply({"signature": b64(encode_signature(signature))})

    return respond


def constant(reply: Reply) -> Responder:
    """A service that answers every request the same way."""
    return lambda request: reply


@pytest.fixture(scope="module")
def admin_key() -> ec.EllipticCurvePrivateKey:
    """The key an honest service signs with."""
    return ec.generate_private_key(ec.SECP521R1())


@pytest.fixture
def service(
    start_service: Callable[[Responder], FakeService], admin_key: ec.EllipticCurvePrivateKey
) -> FakeService:
    """An honest signing service for ``admin_key``."""
    return start_service(signing_service(admin_key))


@pytest.fixture(scope="module")
def other_key() -> ec.EllipticCurvePrivateKey:
    """A key the service does not advertise."""
    return ec.generate_private_key(ec.SECP521R1())


# --- the honest path and the exact wire ----------------------------------------------------------


def test_request_is_exactly_what_the_tke_client_sends(service: FakeService) -> None:
    """TKE-REFERENCE §10 item 5: raw token, JSON headers, fixed body for input "hello"."""
    with SigningServiceClient(service.url) as client:
        client.sign("key1", TOKEN, b"hello")
    get, post = service.captured
    assert (get.method, get.path, get.body) == ("GET", "/keys/key1", b"")
    assert (post.method, post.path) == ("POST", "/sign/key1")
    assert post.body == b'{"hash_algorithm":"sha2-512","input":"aGVsbG8="}'
    for request in (get, post):
        assert request.headers["authorization"] == "tok-abc"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["accept"] == "application/json"
        assert request.headers["user-agent"].startswith("signserv-client/")


def test_probe_body_for_one_hundred_zero_bytes(service: FakeService) -> None:
    """TKE-REFERENCE §10 item 6: the probe's input is base64 of 100 zero bytes."""
    with SigningServiceClient(service.url) as client:
        client.sign("key1", TOKEN, bytes(100))
    assert service.captured[-1].body == (
        b'{"hash_algorithm":"sha2-512","input":"' + PROBE_INPUT_B64.encode() + b'"}'
    )


def test_signature_is_returned_verbatim_and_verifies(
    service: FakeService, admin_key: ec.EllipticCurvePrivateKey
) -> None:
    """The DER signature comes back as the service sent it, valid over SHA-512 of the data."""
    with SigningServiceClient(service.url) as client:
        signature = client.sign("key1", TOKEN, b"block")
    admin_key.public_key().verify(signature, b"block", ec.ECDSA(hashes.SHA512()))
    assert signature[0] == der.TAG_SEQUENCE


def test_public_key_is_fetched_once_per_name(service: FakeService) -> None:
    """Several signatures by one key cost one GET /keys."""
    with SigningServiceClient(service.url) as client:
        client.sign("key1", TOKEN, b"one")
        client.sign("key1", TOKEN, b"two")
    assert [request.method for request in service.captured] == ["GET", "POST", "POST"]


def test_trailing_slash_gives_a_doubled_slash_on_the_wire(service: FakeService) -> None:
    """TKE-REFERENCE §1.2: plain concatenation, so a trailing slash sends //keys/."""
    with SigningServiceClient(service.url + "/") as client:
        client.public_key("key1", TOKEN)
    assert service.captured[0].path == "//keys/key1"


def test_an_empty_token_is_still_sent(service: FakeService) -> None:
    """TKE-REFERENCE §1.3: an empty token goes out as an empty Authorization header."""
    with SigningServiceClient(service.url) as client:
        client.public_key("key1", Secret(""))
    assert service.captured[0].headers["authorization"] == ""


def test_short_x_coordinate_vector(start_service: Callable[[Responder], FakeService]) -> None:
    """TKE-REFERENCE §10 item 1: d = 1, X with a 00 sign byte, padded to 66 bytes in the SKI."""
    service = start_service(constant(json_reply({"publickey": G_PUBLIC_KEY_B64})))
    with SigningServiceClient(service.url) as client:
        point = client.public_key("key1", TOKEN)
    assert point.uncompressed()[:3] == b"\x04\x00\xc6"
    assert point.ski_hex() == G_SKI


@pytest.mark.parametrize(
    ("scalar", "ski"),
    [
        (273, "03d97704c59ed66c2ac814afe67767c891a0281edc800bf275aa99a848dafa34"),
        (73, "4f8ca8097cc07f1b7b2c0a6bd58a95037bd0bd0e8839af97caca6ba71694d958"),
    ],
)
def test_short_coordinate_vectors_give_the_reference_skis(
    start_service: Callable[[Responder], FakeService], scalar: int, ski: str
) -> None:
    """TKE-REFERENCE §10 items 2 and 3: minimal INTEGERs of 64 significant bytes are accepted."""
    service = start_service(signing_service(ec.derive_private_key(scalar, ec.SECP521R1())))
    with SigningServiceClient(service.url) as client:
        assert client.public_key("key1", TOKEN).ski_hex() == ski


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(json_reply({"publickey": G_PUBLIC_KEY_B64}, status=201), id="status_201"),
        pytest.param(
            (200, {}, json.dumps({"publickey": G_PUBLIC_KEY_B64}).encode() + b" trailing"),
            id="trailing_garbage_after_json",
        ),
        pytest.param(
            json_reply({"publickey": G_PUBLIC_KEY_B64, "extra": [1, 2]}), id="extra_members"
        ),
        pytest.param(
            json_reply(
                {"publickey": contract.b64encode(base64.b64decode(G_PUBLIC_KEY_B64) + b"\x00\x01")}
            ),
            id="trailing_bytes_after_der",
        ),
    ],
)
def test_go_leniencies_are_kept(
    start_service: Callable[[Responder], FakeService], reply: Reply
) -> None:
    """TKE-REFERENCE §10 item 4 acceptances: 201, trailing JSON garbage, trailing DER bytes."""
    service = start_service(constant(reply))
    with SigningServiceClient(service.url) as client:
        assert client.public_key("key1", TOKEN).ski_hex() == G_SKI


# --- hostile services: public key ---------------------------------------------------------------


def padded_coordinates(key: ec.EllipticCurvePrivateKey) -> bytes:
    """SEQUENCE{X, Y} with each INTEGER padded to 66 bytes: not minimal for short coordinates."""
    point = point_of(key)
    return der.encode_sequence(
        *(
            der.encode_tlv(der.TAG_INTEGER, coordinate.to_bytes(66, "big"))
            for coordinate in (point.x, point.y)
        )
    )


def spki_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The SubjectPublicKeyInfo DER some services send instead of SEQUENCE{X, Y}."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def off_curve(key: ec.EllipticCurvePrivateKey) -> bytes:
    """SEQUENCE{X, Y+1}: well-formed DER of a point that is not on P-521."""
    point = point_of(key)
    return contract.encode_public_key(contract.PublicPoint(x=point.x, y=point.y + 1))


def urlsafe_unpadded(data: bytes) -> str:
    """URL-safe base64 without padding, which the contract does not allow."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("make_service", "expected"),
    [
        pytest.param(
            lambda key: signing_service(key, publickey_der=spki_of(key)),
            "SubjectPublicKeyInfo",
            id="bogus_spki_pubkey",
        ),
        pytest.param(
            lambda key: signing_service(
                ec.derive_private_key(273, ec.SECP521R1()),
                publickey_der=padded_coordinates(ec.derive_private_key(273, ec.SECP521R1())),
            ),
            "not minimally encoded",
            id="padded_integers",
        ),
        pytest.param(
            lambda key: signing_service(key, publickey_der=off_curve(key)),
            "not a point on the P-521 curve",
            id="off_curve_pubkey",
        ),
        pytest.param(
            lambda key: signing_service(
                key,
                publickey_der=contract.encode_public_key(
                    contract.PublicPoint(x=1 << (67 * 8 - 2), y=1)
                ),
            ),
            "Only P-521",
            id="x_of_67_bytes",
        ),
        pytest.param(
            lambda key: signing_service(key, publickey_der=point_of(key).uncompressed()),
            "raw uncompressed point",
            id="raw_point_pubkey",
        ),
        pytest.param(
            lambda key: signing_service(key, b64=urlsafe_unpadded),
            "not standard base64",
            id="urlsafe_base64",
        ),
    ],
)
def test_bad_public_keys_are_refused(
    start_service: Callable[[Responder], FakeService],
    admin_key: ec.EllipticCurvePrivateKey,
    make_service: Callable[[ec.EllipticCurvePrivateKey], Responder],
    expected: str,
) -> None:
    """A public key that is not a minimal DER SEQUENCE{X, Y} of a P-521 point is refused."""
    service = start_service(make_service(admin_key))
    with SigningServiceClient(service.url) as client, pytest.raises(InvalidPublicKey) as raised:
        client.public_key("key1", TOKEN)
    assert expected.lower() in str(raised.value).lower()


# --- hostile services: signatures ---------------------------------------------------------------


def raw_r_s(signature: bytes) -> bytes:
    """r||s, 66 bytes each, as some HSM APIs return it."""
    r, s = decode_dss_signature(signature)
    return r.to_bytes(66, "big") + s.to_bytes(66, "big")


def padded_r_s(signature: bytes) -> bytes:
    """DER SEQUENCE{R, S} with INTEGERs padded to 67 bytes: valid values, not DER."""
    r, s = decode_dss_signature(signature)
    return der.encode_sequence(
        *(der.encode_tlv(der.TAG_INTEGER, value.to_bytes(67, "big")) for value in (r, s))
    )


@pytest.mark.parametrize(
    ("make_service", "error", "expected"),
    [
        pytest.param(
            lambda key, other: signing_service(key, encode_signature=raw_r_s),
            InvalidServiceSignature,
            "raw bytes (r||s)",
            id="raw_rs_signature",
        ),
        pytest.param(
            lambda key, other: signing_service(key, encode_signature=padded_r_s),
            InvalidServiceSignature,
            "not minimally encoded",
            id="padded_integers",
        ),
        pytest.param(
            lambda key, other: signing_service(key, signer=other),
            SignatureDoesNotVerify,
            "does not verify",
            id="signs_with_other_key",
        ),
        pytest.param(
            lambda key, other: signing_service(key, encode_signature=lambda s: s + b"\x00"),
            InvalidServiceSignature,
            "trailing bytes",
            id="trailing_bytes_after_signature",
        ),
    ],
)
def test_bad_signatures_are_refused(
    start_service: Callable[[Responder], FakeService],
    admin_key: ec.EllipticCurvePrivateKey,
    other_key: ec.EllipticCurvePrivateKey,
    make_service: Callable[[ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey], Responder],
    error: type[ClientError],
    expected: str,
) -> None:
    """Every signature is parsed strictly and verified before it is returned."""
    service = start_service(make_service(admin_key, other_key))
    with SigningServiceClient(service.url) as client, pytest.raises(error) as raised:
        client.sign("key1", TOKEN, b"block")
    assert expected in str(raised.value)


def test_urlsafe_signature_with_a_good_public_key_is_refused(
    start_service: Callable[[Responder], FakeService], admin_key: ec.EllipticCurvePrivateKey
) -> None:
    """A URL-safe base64 signature is refused even when the key itself is fine."""
    honest = signing_service(admin_key)

    def respond(request: CapturedRequest) -> Reply:
        if request.method == "GET":
            return honest(request)
        signature = admin_key.sign(
            contract.parse_sign_request(request.body), ec.ECDSA(hashes.SHA512())
        )
        return json_reply({"signature": urlsafe_unpadded(signature)})

    service = start_service(respond)
    with SigningServiceClient(service.url) as client, pytest.raises(InvalidServiceSignature):
        client.sign("key1", TOKEN, b"block")


# --- hostile services: the envelope -------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param((200, {}, b""), "empty response body", id="empty_body"),
        pytest.param(json_reply({"publickey": 123}), "publickey is not a string", id="not_string"),
        pytest.param(json_reply({"key": "x"}), "publickey not found", id="member_missing"),
        pytest.param((200, {}, b"<html>"), "not JSON", id="html_body"),
        pytest.param(json_reply(["publickey"]), "not a JSON object", id="json_array"),
    ],
)
def test_malformed_2xx_bodies_are_refused(
    start_service: Callable[[Responder], FakeService], reply: Reply, expected: str
) -> None:
    """TKE-REFERENCE §10 item 4: the Go client's messages for bodies it cannot use."""
    service = start_service(constant(reply))
    with (
        SigningServiceClient(service.url) as client,
        pytest.raises(InvalidServiceResponse) as raised,
    ):
        client.public_key("key1", TOKEN)
    assert expected in str(raised.value)


def test_non_2xx_carries_status_and_raw_body(
    start_service: Callable[[Responder], FakeService],
) -> None:
    """TKE-REFERENCE §10 item 4: a 403 shows its status and the raw body."""
    service = start_service(constant((403, {}, b'{"error":"nope"}')))
    with (
        SigningServiceClient(service.url) as client,
        pytest.raises(SigningServiceRefused) as raised,
    ):
        client.public_key("key1", TOKEN)
    assert raised.value.status == 403
    assert "403" in str(raised.value)
    assert '{"error":"nope"}' in str(raised.value)


def test_redirecting_service_gets_no_token_forwarded(
    start_service: Callable[[Responder], FakeService],
) -> None:
    """A redirect is an error naming its target, and the target never sees a request."""
    elsewhere = start_service(constant(json_reply({"publickey": G_PUBLIC_KEY_B64})))
    redirecting_service = start_service(
        constant((307, {"Location": elsewhere.url + "/keys/key1"}, b""))
    )
    with (
        SigningServiceClient(redirecting_service.url) as client,
        pytest.raises(SigningServiceRedirected) as raised,
    ):
        client.public_key("key1", TOKEN)
    assert elsewhere.url in str(raised.value)
    assert elsewhere.captured == []


@pytest.fixture(scope="module")
def self_signed_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the file holding its self-signed certificate."""
    certificate_file, key_file = write_self_signed_localhost(
        tmp_path_factory.mktemp("tls"), "service"
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate_file, key_file)
    return context, certificate_file


def test_tls_is_verified_against_the_given_ca_bundle(
    start_service: Callable[..., FakeService],
    self_signed_tls: tuple[ssl.SSLContext, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unknown certificate is refused; ca_bundle trusts it, even over REQUESTS_CA_BUNDLE."""
    context, certificate_file = self_signed_tls
    service = start_service(constant(json_reply({"publickey": G_PUBLIC_KEY_B64})), context)
    with (
        SigningServiceClient(service.url) as client,
        pytest.raises(SigningServiceUnreachable, match="SSLError"),
    ):
        client.public_key("key1", TOKEN)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate_file.with_name("missing.pem")))
    with SigningServiceClient(service.url, ca_bundle=certificate_file) as client:
        assert client.public_key("key1", TOKEN).ski_hex() == G_SKI


def test_connection_refused_is_a_client_error(
    start_service: Callable[[Responder], FakeService],
) -> None:
    """A transport failure becomes SigningServiceUnreachable."""
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as server:
        closed_port = server.server_address[1]
    with (
        SigningServiceClient(f"http://127.0.0.1:{closed_port}") as client,
        pytest.raises(SigningServiceUnreachable),
    ):
        client.public_key("key1", TOKEN)


def test_a_service_that_never_answers_times_out(
    start_service: Callable[[Responder], FakeService],
) -> None:
    """Every call carries a timeout; a silent service is reported, not waited on forever."""
    release = threading.Event()

    def never_answers(request: CapturedRequest) -> Reply:
        release.wait()
        return json_reply({})

    service = start_service(never_answers)
    try:
        with (
            SigningServiceClient(service.url, timeout=0.2) as client,
            pytest.raises(SigningServiceUnreachable, match="Timeout"),
        ):
            client.public_key("key1", TOKEN)
    finally:
        release.set()


def test_token_never_appears_in_errors(
    start_service: Callable[[Responder], FakeService],
) -> None:
    """Error messages about a request leave the token out."""
    service = start_service(constant((401, {}, b"unauthorized")))
    with SigningServiceClient(service.url) as client, pytest.raises(ClientError) as raised:
        client.public_key("key1", Secret("tok-do-not-show"))
    assert "tok-do-not-show" not in str(raised.value)
    assert "tok-do-not-show" not in repr(raised.value)


def echoes_authorization_in_a_403(request: CapturedRequest) -> Reply:
    """A hostile or careless service: its refusal quotes the Authorization header back."""
    header = request.headers.get("authorization", "")
    body = f"forbidden: {header} (credential {header.removeprefix('Bearer ')})"
    return 403, {}, json.dumps({"error": body, "echo": header}).encode()


@pytest.mark.parametrize(
    ("token", "never_shown"),
    [
        pytest.param("tok-echoed-back-1234", ["tok-echoed-back-1234"], id="raw-token"),
        pytest.param(
            "Bearer tok-echoed-back-1234",
            ["Bearer tok-echoed-back-1234", "tok-echoed-back-1234"],
            id="bearer-token",
        ),
        pytest.param(
            "bearer  tok-echoed-back-1234 ", ["tok-echoed-back-1234"], id="bearer-token-spaced"
        ),
    ],
)
def test_a_token_echoed_in_a_refusal_is_masked(
    start_service: Callable[[Responder], FakeService], token: str, never_shown: list[str]
) -> None:
    """A 403 body quoting the Authorization header keeps its text but not the token."""
    service = start_service(echoes_authorization_in_a_403)
    with (
        SigningServiceClient(service.url) as client,
        pytest.raises(SigningServiceRefused) as raised,
    ):
        client.public_key("key1", Secret(token))
    assert raised.value.status == 403
    assert f"forbidden: {MASK}" in str(raised.value)
    for shown in (str(raised.value), repr(raised.value), raised.value.body):
        assert [secret for secret in never_shown if secret in shown] == [], shown


def test_a_token_echoed_in_a_redirect_target_is_masked(
    start_service: Callable[[Responder], FakeService],
) -> None:
    """A redirect whose Location carries the token is reported without it."""
    service = start_service(
        lambda request: (
            307,
            {"Location": f"https://elsewhere.example/?t={request.headers['authorization']}"},
            b"",
        )
    )
    with (
        SigningServiceClient(service.url) as client,
        pytest.raises(SigningServiceRedirected) as raised,
    ):
        client.public_key("key1", Secret("tok-in-the-location"))
    assert f"https://elsewhere.example/?t={MASK}" in str(raised.value)
    assert "tok-in-the-location" not in str(raised.value)


@pytest.mark.parametrize("name", ["", "a b", "key/../x", "é", "x" * 129])
def test_bad_key_names_are_refused_before_any_request(
    start_service: Callable[[Responder], FakeService], name: str
) -> None:
    """Names outside RFC 3986 unreserved characters never reach the wire."""
    service = start_service(constant(json_reply({})))
    with SigningServiceClient(service.url) as client, pytest.raises(UnusableKeyName):
        client.sign(name, TOKEN, b"x")
    assert service.captured == []


@pytest.mark.parametrize(
    "url", ["ftp://host", "localhost:8080", "http://", "https://user:pw@host:1"]
)
def test_bad_base_urls_are_refused(url: str) -> None:
    """Only http(s) URLs with a host and without embedded credentials are accepted."""
    with pytest.raises(InvalidServiceURL) as raised:
        SigningServiceClient(url)
    assert "user:pw" not in str(raised.value)


# --- SIGNSERVKEYS -------------------------------------------------------------------------------


def write_keys(directory: Path, text: str) -> Path:
    """Write a SIGNSERVKEYS file and return its directory."""
    (directory / "SIGNSERVKEYS").write_text(text, encoding="utf-8")
    return directory


def test_the_three_documented_examples_load(tmp_path: Path) -> None:
    """The IBM page's examples: tokens given, left out, and mixed."""
    write_keys(
        tmp_path,
        '[{"key":"first-key"},{"key":"second-key","token":"token-for-second-key"},'
        '{"key":"third-key"}]',
    )
    entries = load_signservkeys(tmp_path)
    assert [entry.key for entry in entries] == ["first-key", "second-key", "third-key"]
    assert [entry.token is None for entry in entries] == [True, False, True]
    second_token = entries[1].token
    assert second_token is not None and second_token.reveal() == "token-for-second-key"
    assert "token-for-second-key" not in repr(entries)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"key":"a"}', "must hold a JSON array"),
        ("[1]", "entry 0: must be a JSON object"),
        ('[{"key":"a"}, "b"]', "entry 1: must be a JSON object"),
        ('[{"token":"t"}]', 'entry 0: "key" is required'),
        ('[{"key":7}]', 'entry 0: "key" must be a string'),
        ('[{"key":"a","token":7}]', 'entry 0: "token" must be a string'),
        ('[{"key":"a","token":""}]', 'entry 0: "token" must not be empty'),
        ('[{"key":"a b"}]', "entry 0: key 'a b': a key name may contain only"),
        ('[{"key":"a"},{"key":"b"},{"key":"a"}]', "entry 2: key 'a' is already listed in entry 0"),
        ('[{"key":"a","key":"b"}]', "entry 0: member 'key' appears more than once"),
        ('[{"key":"a","tokn":"t"}]', "entry 0: unknown member 'tokn'"),
        ('[{"key":"a"', "is not valid JSON (line 1"),
    ],
)
def test_malformed_files_name_the_entry_and_the_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Each malformed SIGNSERVKEYS is refused with the entry index and what is wrong."""
    write_keys(tmp_path, text)
    with pytest.raises(SignservKeysError) as raised:
        load_signservkeys(tmp_path)
    assert expected in str(raised.value)


def test_a_wrongly_typed_token_is_not_echoed(tmp_path: Path) -> None:
    """The error about a non-string token does not print the value."""
    write_keys(tmp_path, '[{"key":"a","token":["tok-do-not-show"]}]')
    with pytest.raises(SignservKeysError) as raised:
        load_signservkeys(tmp_path)
    assert "tok-do-not-show" not in str(raised.value)


def test_a_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    """No SIGNSERVKEYS: the error names the path and shows an example entry."""
    with pytest.raises(SignservKeysError, match="does not exist"):
        load_signservkeys(tmp_path)


def test_a_token_in_the_file_is_used_without_asking() -> None:
    """An entry's own token is returned; nobody is asked."""

    def ask(prompt: str) -> str:
        raise AssertionError("must not prompt")

    assert resolve_token(SignServKey("a", TOKEN), interactive=False, ask=ask) is TOKEN


def test_a_missing_token_is_asked_for_on_a_terminal() -> None:
    """With a terminal the token is read through the no-echo prompt, naming the key."""
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "typed-token"

    token = resolve_token(SignServKey("admin1", None), interactive=True, ask=ask)
    assert token.reveal() == "typed-token"
    assert prompts == ["Token for signature key admin1: "]


def test_a_missing_token_without_terminal_is_an_error_not_a_hang() -> None:
    """Without a terminal nothing is prompted; the error says how to fix the file."""

    def ask(prompt: str) -> str:
        raise AssertionError("must not prompt")

    with pytest.raises(TokenUnavailable, match="stdin is not a terminal"):
        resolve_token(SignServKey("admin1", None), interactive=False, ask=ask)


# --- property tests -----------------------------------------------------------------------------

KEY_NAMES = st.text(
    alphabet=string.ascii_letters + string.digits + "-._~", min_size=1, max_size=20
).filter(contract.is_valid_key_name)
TOKENS = st.text(min_size=1, max_size=40)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.dictionaries(KEY_NAMES, st.none() | TOKENS, max_size=6))
def test_any_valid_signservkeys_round_trips(tmp_path: Path, entries: dict[str, str | None]) -> None:
    """Whatever valid entries a file lists come back in order, tokens only where given."""
    document = [
        {"key": key} if token is None else {"key": key, "token": token}
        for key, token in entries.items()
    ]
    write_keys(tmp_path, json.dumps(document))
    loaded = load_signservkeys(tmp_path)
    assert [entry.key for entry in loaded] == list(entries)
    assert [None if e.token is None else e.token.reveal() for e in loaded] == list(entries.values())


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(max_size=200)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=6), children, max_size=4)
        ),
        max_leaves=12,
    ).map(json.dumps)
)
def test_any_signservkeys_text_loads_or_is_refused_cleanly(tmp_path: Path, text: str) -> None:
    """Arbitrary file contents give entries or a SignservKeysError, never another exception."""
    write_keys(tmp_path, text)
    with contextlib.suppress(SignservKeysError):
        load_signservkeys(tmp_path)


@dataclass
class SwitchableReply:
    """What a long-lived fake service answers next; hypothesis sets it per example."""

    reply: Reply = (200, {}, b"")

    def __call__(self, request: CapturedRequest) -> Reply:
        return self.reply


@pytest.fixture(scope="module")
def switchable_service() -> Iterator[tuple[SwitchableReply, FakeService]]:
    """One fake service for a whole property test, its answer set per example."""
    servers: list[ThreadingHTTPServer] = []
    switch = SwitchableReply()
    yield switch, serve(switch, servers)
    stop(servers)


@settings(max_examples=150)
@given(
    status=st.sampled_from([200, 201, 204, 400, 401, 403, 404, 500]),
    body=st.binary(max_size=300)
    | st.builds(
        lambda value: json.dumps({"publickey": value, "signature": value}).encode(),
        st.text(max_size=200) | st.integers() | st.none(),
    ),
)
def test_any_answer_is_a_result_or_a_client_error(
    switchable_service: tuple[SwitchableReply, FakeService], status: int, body: bytes
) -> None:
    """Whatever a service sends back, the client returns or raises a ClientError, nothing else."""
    switch, service = switchable_service
    switch.reply = (status, {}, body)
    with SigningServiceClient(service.url) as client:
        with contextlib.suppress(ClientError):
            client.public_key("key1", TOKEN)
        with contextlib.suppress(ClientError):
            client.sign("key1", TOKEN, b"data")
