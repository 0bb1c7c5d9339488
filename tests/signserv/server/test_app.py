"""The Flask app: the contract's answers, and the bad-input table of the core issue.

Every test runs on each storage backend (SQLite, PostgreSQL) but those about the SQLite file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from keystore import KeystoreCorrupt, KeystoreUnavailable, MasterKeyMismatch, MasterKeyMissing
from signserv import contract
from signserv.host.home import open_keystore
from signserv.server.app import create_app

from .backends import SQLITE_ONLY, settings_on_each_backend  # noqa: F401 (every test, both backends)

SIGN_BODY = contract.build_sign_request_body(b"hello")
WRONG_TOKEN = "wrong-token-0123456789abcdef"


def sign(client, token, body=SIGN_BODY, name="admin", **headers):
    headers = {"Content-Type": "application/json", **headers}
    if token is not None:
        headers["Authorization"] = token
    return client.post(f"/sign/{name}", data=body, headers=headers)


def public_key(client, token, name="admin"):
    response = client.get(f"/keys/{name}", headers={"Authorization": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    point = contract.decode_public_key(
        contract.b64decode_strict(response.json["publickey"], what="pk")
    )
    return ec.EllipticCurvePublicNumbers(point.x, point.y, ec.SECP521R1()).public_key()


def test_public_key_is_sequence_xy_of_the_stored_key(client, settings, admin_token) -> None:
    key = public_key(client, admin_token)
    stored = open_keystore(settings).info("admin").public_point
    numbers = key.public_numbers()
    assert stored == b"\x04" + numbers.x.to_bytes(66, "big") + numbers.y.to_bytes(66, "big")


def test_signature_is_der_over_sha512_of_input_hashed_once(client, admin_token) -> None:
    response = sign(client, admin_token)
    assert response.status_code == 200
    assert set(response.json) == {"signature"}
    signature = contract.b64decode_strict(response.json["signature"], what="signature")
    contract.decode_signature(signature)
    key = public_key(client, admin_token)
    key.verify(signature, b"hello", ec.ECDSA(hashes.SHA512()))
    double = hashlib.sha512(hashlib.sha512(b"hello").digest()).digest()
    with pytest.raises(InvalidSignature):
        key.verify(signature, double, ec.ECDSA(Prehashed(hashes.SHA512())))


def test_every_signature_uses_a_fresh_nonce(client, admin_token) -> None:
    signatures = {sign(client, admin_token).json["signature"] for _ in range(3)}
    assert len(signatures) == 3


def test_bearer_prefix_is_accepted(client, admin_token) -> None:
    assert sign(client, f"Bearer {admin_token}").status_code == 200


def test_inputs_alias_is_signed(client, admin_token) -> None:
    body = b'{"hash_algorithm":"sha2-512","inputs":"aGVsbG8="}'
    response = sign(client, admin_token, body)
    assert response.status_code == 200
    signature = contract.b64decode_strict(response.json["signature"], what="signature")
    public_key(client, admin_token).verify(signature, b"hello", ec.ECDSA(hashes.SHA512()))


def test_an_empty_input_is_signed_over_sha512_of_no_bytes(client, admin_token) -> None:
    response = sign(client, admin_token, contract.build_sign_request_body(b""))
    assert response.status_code == 200
    signature = contract.b64decode_strict(response.json["signature"], what="signature")
    public_key(client, admin_token).verify(signature, b"", ec.ECDSA(hashes.SHA512()))


def test_unknown_key_and_wrong_token_get_the_identical_401(client, admin_token) -> None:
    wrong = sign(client, WRONG_TOKEN)
    unknown = sign(client, WRONG_TOKEN, name="nobody")
    unknown_get = client.get("/keys/nobody", headers={"Authorization": admin_token})
    assert wrong.status_code == unknown.status_code == unknown_get.status_code == 401
    assert wrong.get_data() == unknown.get_data() == unknown_get.get_data()
    assert wrong.json["error"] == "unauthorized"


@pytest.mark.parametrize("authorization", [None, "", "Bearer ", "   "])
def test_missing_token_is_401(client, admin_token, authorization) -> None:
    response = sign(client, authorization)
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"


@pytest.mark.parametrize(
    "name", ["a%20b", "a;b", "x" * 129, "caf%C3%A9", "a'b", "a%00b", "%2E%2E", "."]
)
def test_reserved_or_overlong_key_names_are_400_before_lookup(client, admin_token, name) -> None:
    response = client.get(f"/keys/{name}", headers={"Authorization": admin_token})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_key_name"


@pytest.mark.parametrize("name", ["a%2Fb", "../admin", "a/b"])
def test_path_like_key_names_never_reach_a_key(client, admin_token, name) -> None:
    """Dots and slashes are resolved by routing: no route, a JSON 404, never the key itself."""
    response = client.get(f"/keys/{name}", headers={"Authorization": admin_token})
    assert response.status_code == 404
    assert response.is_json


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{broken", "JSON"),
        (b'{"hash_algorithm":"sha2-512"}', "input"),
        (b'{"hash_algorithm":"sha2-512","input":42}', "input"),
        (b'{"hash_algorithm":"sha2-512","input":"%%%%"}', "input"),
        (b'{"hash_algorithm":"sha2-256","input":"aGVsbG8="}', "hash_algorithm"),
        (b'{"hash_algorithm":"sha2-512","input":"aGVsbG8=","inputs":"eA=="}', "input"),
    ],
)
def test_bad_sign_bodies_are_400_naming_the_field(client, admin_token, body, field) -> None:
    response = sign(client, admin_token, body)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert field in response.json["message"]


def test_non_json_body_with_another_media_type_is_415(client, admin_token) -> None:
    response = sign(client, admin_token, b"input=aGVsbG8=", **{"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_body_over_the_limit_is_413(client, admin_token) -> None:
    body = contract.build_sign_request_body(bytes(8192))
    response = sign(client, admin_token, body)
    assert response.status_code == 413
    assert response.json["error"] == "request_entity_too_large"


def test_disabled_key_is_403_after_a_correct_token_only(client, settings, admin_token) -> None:
    assert sign(client, admin_token).status_code == 200
    open_keystore(settings).set_enabled("admin", False)
    assert sign(client, WRONG_TOKEN).status_code == 401
    refused = sign(client, admin_token)
    assert refused.status_code == 403
    assert refused.json["error"] == "key_disabled"


def test_rotated_token_evicts_the_cached_unlock(client, settings, admin_token) -> None:
    assert sign(client, admin_token).status_code == 200
    new_token = "rotated-token-0123456789abcdef"
    open_keystore(settings).rotate_token("admin", admin_token, new_token)
    assert sign(client, admin_token).status_code == 401
    assert sign(client, new_token).status_code == 200


def test_deleted_key_is_refused_even_when_cached(client, settings, admin_token) -> None:
    assert sign(client, admin_token).status_code == 200
    open_keystore(settings).delete_key("admin")
    assert sign(client, admin_token).status_code == 401


def test_wrong_method_is_405_json(client, admin_token) -> None:
    response = client.delete("/keys/admin", headers={"Authorization": admin_token})
    assert response.status_code == 405
    assert response.json["error"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_unknown_path_is_404_json(client) -> None:
    response = client.get("/admin/keys")
    assert response.status_code == 404
    assert response.is_json


def test_double_slash_path_is_served_without_redirect(client, admin_token) -> None:
    """A base URL ending in '/' makes the TKE client request //keys/<name> (§1.2)."""
    response = client.get(
        "/", environ_overrides={"PATH_INFO": "//keys/admin"}, headers={"Authorization": admin_token}
    )
    assert response.status_code == 200
    assert "publickey" in response.json


def test_every_response_carries_security_headers_and_a_request_id(client) -> None:
    response = client.get("/healthz")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert len(response.headers["X-Request-ID"]) == 32


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ready"}


@SQLITE_ONLY
def test_readiness_fails_cleanly_when_the_keystore_is_damaged(client, settings) -> None:
    """Damage in the live database (checkpointed, so not only in the WAL) is reported."""
    with closing(sqlite3.connect(settings.keystore.path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    content = bytearray(settings.keystore.path.read_bytes())
    content[100:4096] = bytes(4096 - 100)
    settings.keystore.path.write_bytes(bytes(content[:4096]))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["error"] == "not_ready"
    assert "Traceback" not in response.get_data(as_text=True)


def test_keystore_failure_during_a_request_is_an_opaque_503(settings, admin_token, monkeypatch):
    store = open_keystore(settings)
    app = create_app(settings, keystore=store)

    def fail(name: str) -> None:
        raise KeystoreUnavailable(
            f"the keystore {settings.keystore.path} cannot be used: I/O error"
        )

    monkeypatch.setattr(store, "status", fail)
    response = sign(app.test_client(), admin_token)
    assert response.status_code == 503
    assert response.json == {
        "error": "keystore_unavailable",
        "message": "the keystore is unavailable",
    }
    assert str(settings.home) not in response.get_data(as_text=True)


def test_app_refuses_to_start_without_its_master_key(settings) -> None:
    settings.keystore.master_key_file.unlink()
    with pytest.raises(MasterKeyMissing):
        create_app(settings)


def test_app_refuses_to_start_with_another_master_key(settings) -> None:
    settings.keystore.master_key_file.write_text("A" * 43 + "=\n")
    with pytest.raises(MasterKeyMismatch):
        create_app(settings)


@SQLITE_ONLY
def test_app_refuses_to_start_on_a_truncated_keystore(settings) -> None:
    content = settings.keystore.path.read_bytes()
    settings.keystore.path.write_bytes(content[:100])
    with pytest.raises(KeystoreCorrupt):
        create_app(settings)


def test_error_bodies_are_json_with_error_and_message(client, admin_token) -> None:
    response = sign(client, admin_token, b"[]")
    assert set(json.loads(response.get_data())) == {"error", "message"}


def test_recreated_name_with_the_same_token_serves_the_new_key(
    client, settings, admin_token
) -> None:
    """A warm cache must not keep serving a deleted key under a re-created name."""
    before = client.get("/keys/admin", headers={"Authorization": admin_token}).json["publickey"]
    store = open_keystore(settings)
    store.delete_key("admin")
    store.create_key("admin", admin_token)
    after = client.get("/keys/admin", headers={"Authorization": admin_token}).json["publickey"]
    assert after != before
    point = store.info("admin").public_point
    decoded = contract.decode_public_key(contract.b64decode_strict(after, what="publickey"))
    assert decoded.uncompressed() == point


def test_inner_double_slash_is_a_json_404_not_a_redirect(client, admin_token) -> None:
    response = client.get("/keys//admin", headers={"Authorization": admin_token})
    assert response.status_code == 404
    assert response.is_json
