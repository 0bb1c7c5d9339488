"""Admin workflows end to end: a real signing service (gunicorn) and the crypto-unit emulator."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from signserv import der
from signserv.client import SigningServiceClient, load_signservkeys, resolve_token
from signserv.tke.errors import AdministratorNameTooLong
from signserv.tke.attributes import encode_attribute_pairs
from signserv.tke.client_session import CryptoUnitSession, parse_crypto_units
from signserv.tke.commands import AttributeId, CommandId, Permission
from signserv.tke.emulator import open_emulator
from signserv.tke.emulator.service import CryptoUnitEmulator
from signserv.tke.workflows import (
    CommandRefusedOnUnit,
    WorkflowError,
    add_administrator,
    remove_administrator,
    set_thresholds,
    unit_status,
    zeroize,
)
from signserv.tke.workflows_signers import KeyRing, NotEnoughSignatureKeys, UnknownSignatureKey

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


@pytest.fixture
def sessions(emulator: CryptoUnitEmulator) -> list[CryptoUnitSession]:
    """A session for every unit of the instance."""
    return [
        CryptoUnitSession(emulator, unit)
        for unit in parse_crypto_units(emulator.list_crypto_units())
    ]


@pytest.fixture
def key_ring(signserv_server: Any, cloudtkefiles: Path) -> KeyRing:
    """SIGNSERVKEYS keys through the real service; never prompts."""
    client = SigningServiceClient(signserv_server.url, timeout=30)
    return KeyRing(
        client,
        load_signservkeys(cloudtkefiles),
        token_for=lambda entry: resolve_token(entry, interactive=False),
    )


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
