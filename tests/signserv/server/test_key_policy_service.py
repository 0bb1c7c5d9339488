"""A key's signing policy as the service applies it: after the token, a 403 naming the rule, an
audit record, no lockout count; a policy altered in the database fails closed."""

from __future__ import annotations

import base64
import json

import pytest
from flask.testing import FlaskClient

from keystore import KeyStore
from signserv.contract import HASH_ALGORITHM, KEY_PROBE_INPUT
from signserv.host.audit_log import record_in_words
from signserv.host.config import Settings
from signserv.host.home import open_failure_counters, open_keystore
from signserv.host.key_policy import ClientCertificateBinding, KeyPolicy
from signserv.server.app import create_app
from signserv.tke.wire.admin_messages import AdminBlock, domain_id
from signserv.tke.wire.commands import CommandId
from signserv.tke.wire.signed_input import InputKind

TOKEN = "admin-token-0123456789abcdef"
MODULE = b"93AABC12".ljust(16, b"\x00")
OTHER_MODULE = b"93AABEC2".ljust(16, b"\x00")


def _block(command: CommandId, module: bytes = MODULE, domain: int = 3) -> bytes:
    return AdminBlock(
        command, domain_id(domain, b"\x00\x00\x00\x01"), module, (17).to_bytes(16, "big")
    ).encode()


def _sign(client: FlaskClient, data: bytes, token: str = TOKEN):
    body = {"hash_algorithm": HASH_ALGORITHM, "input": base64.b64encode(data).decode()}
    return client.post("/sign/admin", json=body, headers={"Authorization": token})


@pytest.fixture
def store(settings: Settings) -> KeyStore:
    """Key ``admin`` may sign queries and administrator changes on one module, domain 3."""
    keystore = open_keystore(settings)
    keystore.create_key("admin", TOKEN)
    policy = KeyPolicy.build(
        {InputKind.ADMINISTRATORS, InputKind.QUERY}, modules={"93AABC12"}, domains={3}
    )
    keystore.set_policy("admin", policy.to_bytes())
    return keystore


@pytest.fixture
def client(settings: Settings, store: KeyStore) -> FlaskClient:
    return create_app(settings).test_client()


def _audit(settings: Settings) -> list[dict[str, object]]:
    return [json.loads(line) for line in settings.audit.path.read_text().splitlines()]


def test_an_allowed_command_is_signed(client: FlaskClient) -> None:
    assert _sign(client, _block(CommandId.ADD_ADMIN)).status_code == 200


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (_block(CommandId.ZEROIZE_DOMAIN), "kind zeroize not allowed"),
        (_block(CommandId.ADD_ADMIN, module=OTHER_MODULE), "module 93AABEC2 not allowed"),
        (_block(CommandId.ADD_ADMIN, domain=4), "domain 4 not allowed"),
        (b"\x00" * 64, "kind certificates not allowed"),
        (KEY_PROBE_INPUT, "kind key-probe not allowed"),
        (b"anything else", "kind opaque not allowed"),
    ],
)
def test_a_refused_input_is_a_403_naming_the_rule_and_is_audited(
    client: FlaskClient, settings: Settings, data: bytes, rule: str
) -> None:
    for _ in range(2):  # cold, then warm from the worker's cache: the same answer
        response = _sign(client, data)
        assert response.status_code == 403
        assert response.get_json()["error"] == "policy_refused"
        assert response.get_json()["rule"] == rule
    records = _audit(settings)
    assert [(r["status"], r["outcome"], r["rule"]) for r in records] == [
        (403, "policy_refused", rule)
    ] * 2
    assert f"403 policy_refused ({rule}): " in record_in_words(
        settings.audit.path.read_bytes().splitlines()[-1]
    )
    state = open_failure_counters(settings).state("admin", "127.0.0.1")
    assert state.pair is None  # a proven token: no authentication failure counted


def test_a_wrong_token_hears_401_and_never_the_policy(client: FlaskClient) -> None:
    response = _sign(client, _block(CommandId.ZEROIZE_DOMAIN), token="wrong-token-0123456789")
    assert response.status_code == 401
    assert "rule" not in response.get_json()


def test_a_command_as_long_as_a_digest_is_judged_as_the_command(
    client: FlaskClient, store: KeyStore
) -> None:
    """A one-pair Set Attributes block is 64 bytes, a SHA-512 digest's length: a key allowed
    certificates and administrator changes must still refuse it as an attributes change."""
    allowed = {InputKind.ADMINISTRATORS, InputKind.CERTIFICATE}
    store.set_policy("admin", KeyPolicy.build(allowed, modules={"93AABC12"}).to_bytes())
    one_pair = (1).to_bytes(4, "big") * 2
    block = AdminBlock(
        CommandId.SET_ATTRIBUTES,
        domain_id(3, b"\x00\x00\x00\x01"),
        MODULE,
        (17).to_bytes(16, "big"),
        one_pair,
    ).encode()
    assert len(block) == 64
    response = _sign(client, block)
    assert (response.status_code, response.get_json()["rule"]) == (
        403,
        "kind attributes not allowed",
    )


def test_a_block_with_a_huge_counter_is_opaque_and_audited_whatever_the_token(
    client: FlaskClient, settings: Settings
) -> None:
    """A counter no unit accepts must not stop the audit record: 403 (opaque) for the owner,
    401 for a wrong token, each with its record."""
    block = AdminBlock(
        CommandId.ZEROIZE_DOMAIN,
        domain_id(3, b"\x00\x00\x00\x01"),
        MODULE,
        bytes(1900) + (17).to_bytes(16, "big"),
    ).encode()
    assert _sign(client, block, token="wrong-token-0123456789").status_code == 401
    assert _sign(client, block).get_json()["rule"] == "kind opaque not allowed"
    assert [(r["status"], r["signed"]["kind"]) for r in _audit(settings)] == [
        (401, "opaque"),
        (403, "opaque"),
    ]


def test_a_new_policy_reaches_a_worker_that_holds_the_key_unlocked(
    client: FlaskClient, store: KeyStore
) -> None:
    assert _sign(client, _block(CommandId.ZEROIZE_DOMAIN)).status_code == 403
    store.set_policy("admin", KeyPolicy.build({InputKind.ZEROIZE}).to_bytes())
    assert _sign(client, _block(CommandId.ZEROIZE_DOMAIN)).status_code == 200
    store.set_policy("admin", None)
    assert _sign(client, b"anything else").status_code == 200


LAX = KeyPolicy.build(set(InputKind)).to_bytes()


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        pytest.param("UPDATE keys SET policy = NULL WHERE name = 'admin'", (), id="removed"),
        pytest.param("UPDATE keys SET policy = ? WHERE name = 'admin'", (LAX,), id="edited"),
    ],
)
def test_a_policy_altered_in_the_database_answers_503_and_signs_nothing(
    settings: Settings, store: KeyStore, sql: str, parameters: tuple[bytes, ...]
) -> None:
    with store.records._database.transaction() as connection:  # type: ignore[attr-defined]
        connection.execute(sql, parameters)
    client = create_app(settings).test_client()
    response = _sign(client, _block(CommandId.ZEROIZE_DOMAIN))
    assert response.status_code == 503
    assert "signature" not in response.get_json()
    assert _audit(settings)[-1]["outcome"] == "keystore_unavailable"


def test_a_bound_key_refuses_its_token_without_a_client_certificate(
    client: FlaskClient, store: KeyStore, settings: Settings
) -> None:
    binding = ClientCertificateBinding.for_subject("CN=admin 1")
    store.set_policy(
        "admin", KeyPolicy.build(set(InputKind), client_certificate=binding).to_bytes()
    )
    for response in (
        client.get("/keys/admin", headers={"Authorization": TOKEN}),
        _sign(client, b"anything else"),
    ):
        assert response.status_code == 403
        assert response.get_json()["error"] == "client_certificate_required"
        assert "admin 1" not in response.get_data(as_text=True)
    assert (
        client.get("/keys/admin", headers={"Authorization": "wrong-token-0123"}).status_code == 401
    )
    assert open_failure_counters(settings).state("admin", "127.0.0.1").pair is not None
