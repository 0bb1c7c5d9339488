"""Admin workflows end to end against a real signing service (gunicorn) and the emulator.

Hostile services and forged commands are refused, and no crypto unit changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from werkzeug.serving import make_server

from signserv import contract, der
from signserv.client import (
    ClientError,
    InvalidPublicKey,
    SignatureDoesNotVerify,
    SigningServiceClient,
    load_signservkeys,
    resolve_token,
)
from signserv.secret import Secret
from signserv.tke.client.session import (
    CryptoUnitSession,
    UnauthenticatedCryptoUnit,
    UnexpectedCryptoUnitAnswer,
    parse_crypto_units,
    read_admin_reply,
)
from signserv.tke.client.signers import KeyRing, NotEnoughSignatureKeys, UnknownSignatureKey
from signserv.tke.client.workflows import (
    CommandFailedOnUnit,
    CommandRefusedOnUnit,
    WorkflowError,
    add_administrator,
    remove_administrator,
    set_thresholds,
    unit_status,
    zeroize,
)
from signserv.tke.emulator import open_emulator
from signserv.tke.emulator.service import CryptoUnitEmulator
from signserv.tke.errors import AdministratorNameTooLong, CryptoUnitRefused, MalformedTKEMessage
from signserv.tke.wire.admin_messages import (
    AdminRequest,
    AdminResponse,
    AdminResponseBlock,
    decode_admin_block,
    decode_admin_request,
    decode_admin_response,
    decode_admin_response_block,
)
from signserv.tke.wire.attributes import encode_attribute_pairs
from signserv.tke.wire.commands import AttributeId, CommandId, Permission
from signserv.tke.wire.cprb import Cprb
from signserv.tke.wire.htp import decode_htp_request, decode_htp_response, encode_htp_response
from signserv.tke.wire.signer_info import parse_signer_infos

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ADMIN_NAMES = ("admin1", "admin2", "admin3", "admin4")


@pytest.fixture(scope="module")
def admin_tokens(signserv_server: Any) -> dict[str, str]:
    """Four keys created in the session's signing service for this module, name -> token."""
    prefix = f"wf-{secrets.token_hex(4)}"
    return {
        f"{prefix}-{name}": signserv_server.home.create_key(f"{prefix}-{name}")
        for name in ADMIN_NAMES
    }


@pytest.fixture
def key_names(admin_tokens: dict[str, str]) -> list[str]:
    """The four key names in SIGNSERVKEYS order."""
    return list(admin_tokens)


@pytest.fixture
def cloudtkefiles(tmp_path: Path, admin_tokens: dict[str, str]) -> Path:
    """A workstation directory whose SIGNSERVKEYS lists the four keys with their tokens."""
    directory = tmp_path / "tke-files"
    directory.mkdir()
    entries = [{"key": name, "token": token} for name, token in admin_tokens.items()]
    (directory / "SIGNSERVKEYS").write_text(json.dumps(entries))
    return directory


@pytest.fixture
def emulator(tmp_path: Path) -> CryptoUnitEmulator:
    """A fresh instance: two operational units and one recovery unit, all in imprint mode."""
    return open_emulator(tmp_path / "emulator.json")


@dataclass
class RecordingTransport:
    """The emulator, every HTPRequest kept for replay and every answer passed through a filter."""

    emulator: CryptoUnitEmulator
    sent: list[tuple[str, str]]
    rewrite_answer: Callable[[str], str] = lambda answer: answer

    def list_crypto_units(self) -> dict[str, object]:
        """The emulator's listing."""
        return self.emulator.list_crypto_units()

    def send(self, hsm_id: str, htp_request: str) -> str:
        """Record, deliver, and filter the answer."""
        self.sent.append((hsm_id, htp_request))
        return self.rewrite_answer(self.emulator.send(hsm_id, htp_request))


@pytest.fixture
def transport(emulator: CryptoUnitEmulator) -> RecordingTransport:
    """The emulator behind a recorder."""
    return RecordingTransport(emulator, [])


@pytest.fixture
def sessions(transport: RecordingTransport) -> list[CryptoUnitSession]:
    """A session for every unit of the instance, over the recording transport."""
    units = parse_crypto_units(transport.list_crypto_units())
    anchors = dict([transport.emulator.oa_trust_anchor()])
    return [CryptoUnitSession(transport, unit, anchors) for unit in units]


def key_ring_for(url: str, cloudtkefiles: Path) -> KeyRing:
    """SIGNSERVKEYS keys through the signing service at ``url``; never prompts."""
    return KeyRing(
        SigningServiceClient(url, timeout=30),
        load_signservkeys(cloudtkefiles),
        token_for=lambda entry: resolve_token(entry, interactive=False),
    )


@pytest.fixture
def key_ring(signserv_server: Any, cloudtkefiles: Path) -> KeyRing:
    """The real signing service."""
    return key_ring_for(signserv_server.url, cloudtkefiles)


def add_admins(
    sessions: list[CryptoUnitSession], key_ring: KeyRing, key_names: list[str], count: int
) -> None:
    """Install the first ``count`` keys as admin1..adminN."""
    for key, name in zip(key_names[:count], ADMIN_NAMES, strict=False):
        add_administrator(sessions, key_ring, key=key, name=name)


@contextlib.contextmanager
def state_unchanged(emulator: CryptoUnitEmulator) -> Iterator[None]:
    """Require the emulator's state file to be byte-for-byte the same after the block."""
    before = emulator.state_path.read_bytes()
    try:
        yield
    finally:
        assert emulator.state_path.read_bytes() == before, "the crypto units changed"


@pytest.fixture
def three_admins_two_of_three(
    sessions: list[CryptoUnitSession], key_ring: KeyRing, key_names: list[str]
) -> None:
    """Keys 1-3 installed everywhere, thresholds 2/2 (key 4 is not an administrator)."""
    add_admins(sessions, key_ring, key_names, 3)
    set_thresholds(sessions, key_ring, signature=2, revocation=2)


# --- the ceremony -------------------------------------------------------------------------------


def test_full_admin_ceremony_through_the_signing_service(
    sessions: list[CryptoUnitSession], key_ring: KeyRing, key_names: list[str]
) -> None:
    """Add three admins, thresholds 2/2 leave imprint mode, remove one by quorum, zeroize."""
    for key, name in zip(key_names[:3], ADMIN_NAMES, strict=False):
        changes = add_administrator(sessions, key_ring, key=key, name=name)
        assert [change.signed_by for change in changes] == [(), (), ()]

    changes = set_thresholds(sessions, key_ring, signature=2, revocation=2)
    assert {change.signed_by for change in changes} == {tuple(key_names[:2])}
    for session in sessions:
        status = unit_status(session)
        assert (status.signature_threshold, status.revocation_threshold) == (2, 2)
        assert [admin.name for admin in status.administrators] == ["admin1", "admin2", "admin3"]

    removed = key_ring.signer(key_names[0]).ski
    changes = remove_administrator(sessions, key_ring, ski=removed)
    assert {change.signed_by for change in changes} == {tuple(key_names[:2])}
    for session in sessions:
        assert [admin.name for admin in unit_status(session).administrators] == [
            "admin2",
            "admin3",
        ]

    changes = zeroize(sessions, key_ring)
    assert {change.signed_by for change in changes} == {tuple(key_names[1:3])}
    for session in sessions:
        status = unit_status(session)
        assert status.imprint_mode and status.administrators == ()


def test_installed_certificate_is_signed_over_the_double_hash(
    sessions: list[CryptoUnitSession], key_ring: KeyRing, key_names: list[str]
) -> None:
    """TKE-REFERENCE §10 item 9: a service-made certificate verifies over SHA-512(SHA-512(TBS))."""
    add_administrator(sessions[:1], key_ring, key=key_names[0], name="admin1")
    signer = key_ring.signer(key_names[0])
    certificate = sessions[0].query(CommandId.QUERY_DOMAIN_ADMINS, signer.ski).output
    tbs, _, signature_bits = der.split_elements(der.read_tlv(certificate).content)
    tbs_der = der.encode_tlv(tbs.tag, tbs.content)
    public_key = ec.EllipticCurvePublicNumbers(
        signer.point.x, signer.point.y, ec.SECP521R1()
    ).public_key()
    signature = signature_bits.content[1:]
    public_key.verify(signature, hashlib.sha512(tbs_der).digest(), ec.ECDSA(hashes.SHA512()))
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, tbs_der, ec.ECDSA(hashes.SHA512()))


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("x" * 30, "x" * 30),
        ("é" * 15, "é" * 15),
        ("  Name With Spaces ", "Name With Spaces"),
    ],
)
def test_admin_names_up_to_30_bytes_are_installed_trimmed(
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
    name: str,
    shown: str,
) -> None:
    """TKE-REFERENCE §10 item 10: 30 bytes fit, and names read back trimmed."""
    add_administrator(sessions[:1], key_ring, key=key_names[0], name=name)
    assert [admin.name for admin in unit_status(sessions[0]).administrators] == [shown]


@pytest.mark.parametrize("name", ["x" * 31, "é" * 16])
def test_admin_names_over_30_bytes_are_refused_before_anything_is_sent(
    emulator: CryptoUnitEmulator,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
    name: str,
) -> None:
    """TKE-REFERENCE §10 item 10: 31 bytes, or 16 two-byte characters, are too long."""
    with pytest.raises(AdministratorNameTooLong), state_unchanged(emulator):
        add_administrator(sessions, key_ring, key=key_names[0], name=name)


def test_removal_needs_revocation_threshold_signatures(
    sessions: list[CryptoUnitSession], key_ring: KeyRing, key_names: list[str]
) -> None:
    """TKE-REFERENCE §10 item 28: with sig 1 / rev 2, a removal is signed by two admins."""
    add_admins(sessions, key_ring, key_names, 3)
    changes = set_thresholds(sessions, key_ring, signature=1, revocation=2)
    assert {change.signed_by for change in changes} == {(key_names[0],)}
    changes = remove_administrator(sessions, key_ring, ski=key_ring.signer(key_names[2]).ski)
    assert {change.signed_by for change in changes} == {tuple(key_names[:2])}


def test_threshold_one_without_permission_is_refused_by_the_unit(
    emulator: CryptoUnitEmulator,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
) -> None:
    """TKE-REFERENCE §10 item 27: threshold 1 without permission 0x10 gives rc 209, reason 78."""
    add_admins(sessions[:1], key_ring, key_names, 2)
    attributes = sessions[0].attributes()
    without_threshold_one = encode_attribute_pairs(
        [
            (AttributeId.SIGNATURE_THRESHOLD, 0),
            (AttributeId.REVOCATION_THRESHOLD, 0),
            (AttributeId.PERMISSIONS, attributes.permissions & ~Permission.THRESHOLD_ONE),
            (AttributeId.MODE, attributes.mode),
        ]
    )
    sessions[0].run_signed(CommandId.SET_ATTRIBUTES, without_threshold_one, [])
    with pytest.raises(CommandRefusedOnUnit) as raised, state_unchanged(emulator):
        set_thresholds(sessions[:1], key_ring, signature=1, revocation=1)
    assert (raised.value.refusal.return_code, raised.value.refusal.reason) == (209, 78)


def test_zeroize_with_one_signature_permission_uses_one_key(
    emulator: CryptoUnitEmulator,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
) -> None:
    """TKE-REFERENCE §10 item 30: with ZEROIZE_1SIGN one key suffices, and none installed fails."""
    add_admins(sessions, key_ring, key_names, 2)
    set_thresholds(sessions, key_ring, signature=2, revocation=2)
    for session in sessions:
        attributes = session.attributes()
        with_zeroize_one = encode_attribute_pairs(
            [
                (AttributeId.SIGNATURE_THRESHOLD, 2),
                (AttributeId.REVOCATION_THRESHOLD, 2),
                (AttributeId.PERMISSIONS, attributes.permissions | Permission.ZEROIZE_ONE_SIGN),
                (AttributeId.MODE, attributes.mode),
            ]
        )
        signers = [key_ring.signer(key) for key in key_names[:2]]
        session.run_signed(CommandId.SET_ATTRIBUTES, with_zeroize_one, signers)

    with pytest.raises(NotEnoughSignatureKeys) as raised, state_unchanged(emulator):
        zeroize(sessions, key_ring, signing_keys=[key_names[3]])
    for session in sessions:
        assert session.unit.location_text in str(raised.value)

    changes = zeroize(sessions, key_ring)
    assert {change.signed_by for change in changes} == {(key_names[0],)}


def test_a_key_missing_from_signservkeys_is_named(
    sessions: list[CryptoUnitSession], key_ring: KeyRing
) -> None:
    """A signing key that SIGNSERVKEYS does not list is refused with the listed names."""
    with pytest.raises(UnknownSignatureKey, match="not listed in SIGNSERVKEYS"):
        add_administrator(sessions, key_ring, key="no-such-key", name="x")


def test_adding_an_installed_key_again_is_refused(
    emulator: CryptoUnitEmulator,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
) -> None:
    """An administrator cannot be added twice; nothing changes."""
    add_admins(sessions, key_ring, key_names, 1)
    with pytest.raises(WorkflowError, match="already an administrator"), state_unchanged(emulator):
        add_administrator(sessions, key_ring, key=key_names[0], name="again")


def signed_requests(transport: RecordingTransport, hsm_id: str) -> list[AdminRequest]:
    """The admin requests sent to one unit that carry a counter (the signed commands)."""
    requests_sent = [
        decode_admin_request(decode_htp_request(text).cprb.payload)
        for unit, text in transport.sent
        if unit == hsm_id
    ]
    return [request for request in requests_sent if decode_admin_block(request.block).counter]


def test_commands_on_the_wire_carry_signer_infos_and_fresh_counters(
    transport: RecordingTransport,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
) -> None:
    """§10 items 11, 12, 20: SignerInfo bytes, empty 04 00 in imprint mode, counter + 1 each time."""
    add_admins(sessions, key_ring, key_names, 2)
    set_thresholds(sessions, key_ring, signature=2, revocation=2)
    add_administrator(sessions, key_ring, key=key_names[2], name="admin3")

    requests_sent = signed_requests(transport, sessions[0].unit.hsm_id)
    assert [decode_admin_block(request.block).command for request in requests_sent] == [
        CommandId.ADD_ADMIN,
        CommandId.ADD_ADMIN,
        CommandId.SET_ATTRIBUTES,
        CommandId.ADD_ADMIN,
    ]
    assert requests_sent[0].signer_infos == b""  # an empty OCTET STRING, 04 00, not omitted
    counters = [int.from_bytes(decode_admin_block(r.block).counter, "big") for r in requests_sent]
    assert counters == list(range(counters[0], counters[0] + 4))

    signer_infos = parse_signer_infos(requests_sent[-1].signer_infos)
    assert [info.ski for info in signer_infos] == [
        key_ring.signer(key).ski for key in key_names[:2]
    ]
    encoded = requests_sent[-1].signer_infos
    assert encoded.startswith(b"\x30\x81") and encoded[3:8] == bytes.fromhex("0201038020")
    assert bytes.fromhex("300d06096086480165030402030500300c06082a8648ce3d0403040500") in encoded


# --- hostile signing services in front of the real one -------------------------------------------


@pytest.fixture
def start_hostile_service() -> Iterator[Callable[[WSGIApp], str]]:
    """Serve WSGI apps on free 127.0.0.1 ports; each is shut down when the test ends."""
    servers = []

    def start(app: WSGIApp) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def hostile_app(upstream: str, forge: Callable[[str, bytes], bytes | None]) -> WSGIApp:
    """Answer with ``forge(method, body)``; where it returns None, relay to the real service."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        forged = forge(method, body)
        if forged is None:
            answer = requests.request(
                method,
                upstream + environ["PATH_INFO"],
                data=body,
                headers={"Authorization": environ.get("HTTP_AUTHORIZATION", "")},
                timeout=30,
            )
            status, forged = answer.status_code, answer.content
        else:
            status = 200
        start_response(f"{status} Hostile", [("Content-Type", "application/json")])
        return [forged]

    return app


def signs_with_other_key(upstream: str) -> WSGIApp:
    """Advertises the real public key, but signs with a key of its own."""
    own_key = ec.generate_private_key(ec.SECP521R1())

    def forge(method: str, body: bytes) -> bytes | None:
        if method != "POST":
            return None
        signature = own_key.sign(contract.parse_sign_request(body), ec.ECDSA(hashes.SHA512()))
        return json.dumps({"signature": contract.b64encode(signature)}).encode()

    return hostile_app(upstream, forge)


def bogus_spki_pubkey(upstream: str) -> WSGIApp:
    """Answers GET /keys with a SubjectPublicKeyInfo instead of SEQUENCE{X, Y}."""
    spki = (
        ec.generate_private_key(ec.SECP521R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def forge(method: str, body: bytes) -> bytes | None:
        if method != "GET":
            return None
        return json.dumps({"publickey": contract.b64encode(spki)}).encode()

    return hostile_app(upstream, forge)


@pytest.mark.parametrize(
    ("make_app", "error"),
    [
        pytest.param(signs_with_other_key, SignatureDoesNotVerify, id="signs_with_other_key"),
        pytest.param(bogus_spki_pubkey, InvalidPublicKey, id="bogus_spki_pubkey"),
    ],
)
@pytest.mark.usefixtures("three_admins_two_of_three")
def test_a_hostile_service_is_caught_before_any_unit_changes(
    signserv_server: Any,
    start_hostile_service: Callable[[WSGIApp], str],
    cloudtkefiles: Path,
    emulator: CryptoUnitEmulator,
    sessions: list[CryptoUnitSession],
    key_names: list[str],
    make_app: Callable[[str], WSGIApp],
    error: type[Exception],
) -> None:
    """The client verifies what the service returns, where the Go SDK would send it on."""
    hostile = key_ring_for(start_hostile_service(make_app(signserv_server.url)), cloudtkefiles)
    with pytest.raises(error), state_unchanged(emulator):
        add_administrator(sessions, hostile, key=key_names[3], name="admin4")


# --- crypto units that are not who they claim ----------------------------------------------------


def admin_answer(htp_response: str) -> tuple[Cprb, AdminResponse, AdminResponseBlock] | None:
    """The parts of an m_admin answer; None for get_xcp_info answers and early errors."""
    cprb = decode_htp_response(htp_response)
    try:
        response = decode_admin_response(cprb.payload)
    except MalformedTKEMessage:
        return None
    if response.block is None:
        return None
    return cprb, response, decode_admin_response_block(response.block)


def claim_imprint_mode(htp_response: str) -> str:
    """Rewrite Query Domain Attributes answers to say thresholds 0/0, keeping the OA signature."""
    parts = admin_answer(htp_response)
    if parts is None or parts[2].command != CommandId.QUERY_DOMAIN_ATTRIBUTES:
        return htp_response
    cprb, response, block = parts
    forged_block = replace(block, output=encode_attribute_pairs([(1, 0), (2, 0)])).encode()
    return encode_htp_response(
        replace(cprb, payload=replace(response, block=forged_block).encode())
    )


class ReplayFirstAddAnswer:
    """Answer every Add Administrator with the unit's first, authentic, OA-signed answer."""

    def __init__(self) -> None:
        self.first: str | None = None

    def __call__(self, htp_response: str) -> str:
        parts = admin_answer(htp_response)
        if parts is None or parts[2].command != CommandId.ADD_ADMIN:
            return htp_response
        self.first = self.first or htp_response
        return self.first


def test_a_stale_authentic_answer_is_caught_by_its_counter(
    transport: RecordingTransport,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
) -> None:
    """A replayed success carries an old counter; the client does not take it as an answer."""
    transport.rewrite_answer = ReplayFirstAddAnswer()
    add_administrator(sessions[:1], key_ring, key=key_names[0], name="admin1")
    with pytest.raises(UnexpectedCryptoUnitAnswer, match="answered with counter"):
        add_administrator(sessions[:1], key_ring, key=key_names[1], name="admin2")


@pytest.mark.usefixtures("three_admins_two_of_three")
def test_a_tampered_answer_fails_its_oa_signature(
    transport: RecordingTransport, sessions: list[CryptoUnitSession]
) -> None:
    """A machine in the middle that changes an answer is caught by the OA signature (§3.8)."""
    transport.rewrite_answer = claim_imprint_mode
    with pytest.raises(UnauthenticatedCryptoUnit, match="OA signature of the response"):
        unit_status(sessions[0])


def test_a_unit_that_does_not_chain_to_a_trusted_root_is_refused(
    emulator: CryptoUnitEmulator,
) -> None:
    """Without the emulator's root among the trust anchors, no answer is believed (§3.9)."""
    unit = parse_crypto_units(emulator.list_crypto_units())[0]
    stranger = ec.generate_private_key(ec.SECP521R1()).public_key().public_numbers()
    anchors = {bytes(32): contract.PublicPoint(x=stranger.x, y=stranger.y)}
    with pytest.raises(UnauthenticatedCryptoUnit, match="not a trusted root"):
        CryptoUnitSession(emulator, unit, anchors).attributes()


# --- forged commands that reach the crypto unit ---------------------------------------------------


@dataclass(frozen=True)
class ForgedSigner:
    """A signer that claims one SKI and signs however the test says."""

    label: str
    ski: bytes
    signature_for: Callable[[bytes], bytes]

    def sign(self, data: bytes) -> bytes:
        """Whatever the forgery produces."""
        return self.signature_for(data)


def raw_r_s(signature: bytes) -> bytes:
    """r||s, 66 bytes each, instead of DER."""
    r, s = decode_dss_signature(signature)
    return r.to_bytes(66, "big") + s.to_bytes(66, "big")


@pytest.mark.usefixtures("three_admins_two_of_three")
def test_a_replayed_command_is_refused(
    emulator: CryptoUnitEmulator,
    transport: RecordingTransport,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
) -> None:
    """A signed command sent again carries a used counter: rc 163."""
    remove_administrator(sessions[:1], key_ring, ski=key_ring.signer(key_names[2]).ski)
    hsm_id, removal = transport.sent[-1]
    add_administrator(sessions[:1], key_ring, key=key_names[2], name="admin3")
    with pytest.raises(CryptoUnitRefused) as raised, state_unchanged(emulator):
        read_admin_reply(
            emulator.send(hsm_id, removal),
            command=CommandId.REMOVE_ADMIN,
            oa_key=sessions[0].oa_key,
        )
    assert raised.value.return_code == 163


@pytest.mark.parametrize(
    ("signer_indexes", "return_code"),
    [
        pytest.param([0], 208, id="one_signature_short_of_the_quorum"),
        pytest.param([0, 3], 257, id="signer_not_installed"),
    ],
)
@pytest.mark.usefixtures("three_admins_two_of_three")
def test_too_few_installed_signers_are_refused(
    emulator: CryptoUnitEmulator,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
    signer_indexes: list[int],
    return_code: int,
) -> None:
    """Adding under threshold 2 with one signature (208) or a non-admin's second one (257)."""
    certificate = key_ring.signer(key_names[3]).admin_certificate("admin4")
    signers = [key_ring.signer(key_names[index]) for index in signer_indexes]
    with pytest.raises(CryptoUnitRefused) as raised, state_unchanged(emulator):
        sessions[0].run_signed(CommandId.ADD_ADMIN, certificate, signers)
    assert raised.value.return_code == return_code


@pytest.mark.usefixtures("three_admins_two_of_three")
def test_removing_an_ski_that_is_not_installed_is_refused(
    emulator: CryptoUnitEmulator,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
) -> None:
    """The workflow refuses before sending; the unit itself answers rc 32, reason 32."""
    missing = key_ring.signer(key_names[3]).ski
    with pytest.raises(WorkflowError, match="not installed"), state_unchanged(emulator):
        remove_administrator(sessions, key_ring, ski=missing)
    signers = [key_ring.signer(key) for key in key_names[:2]]
    with pytest.raises(CryptoUnitRefused) as raised, state_unchanged(emulator):
        sessions[0].run_signed(CommandId.REMOVE_ADMIN, missing, signers)
    assert (raised.value.return_code, raised.value.reason) == (32, 32)


@pytest.mark.parametrize(
    ("forge", "return_code"),
    [
        pytest.param(lambda admin2, data: admin2.sign(data), 192, id="signed_by_another_admin"),
        pytest.param(lambda admin2, data: raw_r_s(admin2.sign(data)), 193, id="raw_rs_signature"),
    ],
)
@pytest.mark.usefixtures("three_admins_two_of_three")
def test_a_forged_signer_info_is_refused(
    emulator: CryptoUnitEmulator,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
    forge: Callable[[Any, bytes], bytes],
    return_code: int,
) -> None:
    """admin1's SKI over a signature it did not make: invalid (192) or malformed (193)."""
    admin1, admin2 = key_ring.signer(key_names[0]), key_ring.signer(key_names[1])
    forged = ForgedSigner("forged", admin1.ski, lambda data: forge(admin2, data))
    certificate = key_ring.signer(key_names[3]).admin_certificate("admin4")
    with pytest.raises(CryptoUnitRefused) as raised, state_unchanged(emulator):
        sessions[0].run_signed(CommandId.ADD_ADMIN, certificate, [forged, admin2])
    assert raised.value.return_code == return_code


# --- re-runs after a failure part-way ----------------------------------------------------------


class SigningServiceFailingOnCall(SigningServiceClient):
    """The signing service, except that sign call number ``failing_call`` raises ClientError."""

    def __init__(self, url: str, failing_call: int) -> None:
        super().__init__(url, timeout=30)
        self.calls = 0
        self.failing_call = failing_call

    def sign(self, name: str, token: Secret[str], data: bytes) -> bytes:
        """Count the call; fail the chosen one as an unreachable service would."""
        self.calls += 1
        if self.calls == self.failing_call:
            raise ClientError("the signing service went away")
        return super().sign(name, token, data)


def key_ring_failing_on_call(url: str, cloudtkefiles: Path, failing_call: int) -> KeyRing:
    """SIGNSERVKEYS keys through a signing service that fails once, on ``failing_call``."""
    return KeyRing(
        SigningServiceFailingOnCall(url, failing_call),
        load_signservkeys(cloudtkefiles),
        token_for=lambda entry: resolve_token(entry, interactive=False),
    )


@pytest.mark.usefixtures("three_admins_two_of_three")
def test_an_admin_add_rerun_after_a_service_failure_finishes_the_other_units(
    signserv_server: Any,
    cloudtkefiles: Path,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
) -> None:
    """The service fails on the second unit (call 4: certificate, 2 for unit 1, then unit 2):
    the error names unit 1 as changed, and a re-run skips it and adds the key elsewhere."""
    failing = key_ring_failing_on_call(signserv_server.url, cloudtkefiles, failing_call=4)
    with pytest.raises(CommandFailedOnUnit, match="went away") as failed:
        add_administrator(sessions, failing, key=key_names[3], name="admin4")
    first = sessions[0].unit.location_text
    assert failed.value.applied == [first] and f"already applied to {first}" in str(failed.value)
    changes = add_administrator(sessions, key_ring, key=key_names[3], name="admin4")
    assert [change.location for change in changes] == [s.unit.location_text for s in sessions[1:]]
    new_ski = key_ring.signer(key_names[3]).ski
    assert all(new_ski in session.admin_skis() for session in sessions)


@pytest.mark.usefixtures("three_admins_two_of_three")
def test_an_admin_rm_rerun_after_a_service_failure_finishes_the_other_units(
    signserv_server: Any,
    cloudtkefiles: Path,
    sessions: list[CryptoUnitSession],
    key_ring: KeyRing,
    key_names: list[str],
) -> None:
    """The service fails on the second unit (call 3: 2 for unit 1, then unit 2): the error
    names unit 1 as changed, and a re-run skips it and removes the administrator elsewhere."""
    removed = key_ring.signer(key_names[2]).ski
    failing = key_ring_failing_on_call(signserv_server.url, cloudtkefiles, failing_call=3)
    with pytest.raises(CommandFailedOnUnit, match="went away") as failed:
        remove_administrator(sessions, failing, ski=removed)
    assert failed.value.applied == [sessions[0].unit.location_text]
    changes = remove_administrator(sessions, key_ring, ski=removed)
    assert [change.location for change in changes] == [s.unit.location_text for s in sessions[1:]]
    assert all(removed not in session.admin_skis() for session in sessions)
