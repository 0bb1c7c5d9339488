"""Administrator lifecycle on an emulated crypto unit, driven through send() (TKE-REFERENCE §5-§6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from signserv.tke.emulator import CryptoUnitEmulator
from signserv.tke.wire import (
    DEFAULT_PERMISSIONS,
    AdminBlock,
    AdminRequest,
    AttributeId,
    CommandId,
    Cprb,
    HTPRequest,
    HTPResponseError,
    XcpInfoRequest,
    build_admin_tbs,
    decode_admin_response,
    decode_htp_response,
    parse_admin_certificate,
)

if TYPE_CHECKING:
    from conftest import Administrator, UnitDriver

FRESH_ATTRIBUTES = {1: 0, 2: 0, 3: DEFAULT_PERMISSIONS, 4: 0, 5: 0}


def test_new_instance_has_two_operational_and_one_recovery_unit(
    emulator: CryptoUnitEmulator, drivers: list[UnitDriver]
) -> None:
    """Default layout, all units in imprint mode with default permissions and empty registers."""
    listing = emulator.list_crypto_units()
    counts = [len(listing[key]) for key in ("hsms", "source_hsms", "failover_hsms")]  # type: ignore[arg-type]
    assert counts == [2, 1, 0]
    for unit in drivers:
        assert unit.attributes() == FRESH_ATTRIBUTES
        info = unit.domain_info()
        assert (info.current_status, info.pending_status) == ("Empty", "Empty")


def test_imprint_mode_adds_admins_unsigned_and_leaves_with_two_signatures(
    unit: UnitDriver, admins: list[Administrator]
) -> None:
    """§6.2: no signatures in imprint mode; leaving needs the new signature threshold."""
    unit.imprint_with(admins)
    assert unit.installed_skis() == [admin.ski for admin in admins]
    assert unit.attributes()[AttributeId.SIGNATURE_THRESHOLD] == 2
    assert unit.attributes()[AttributeId.PERMISSIONS] == 0x01FF2055
    assert unit.domain_info().flags & 0x11 == 0x11


def test_admin_certificate_reads_back_with_its_name(
    unit: UnitDriver, admins: list[Administrator]
) -> None:
    """Query one admin by SKI returns its certificate; the name reads back trimmed (§2.3)."""
    unit.imprint_with(admins)
    certificate = unit.query(CommandId.QUERY_DOMAIN_ADMINS, admins[1].ski).output
    assert certificate[4:413] == build_admin_tbs("admin2", admins[1].point)
    assert parse_admin_certificate(certificate).name == "admin2"


def test_unknown_admin_query_is_32_32(unit: UnitDriver, admins: list[Administrator]) -> None:
    """§5: querying an SKI that is not installed answers rc 32, reason 32."""
    answer = unit.query(CommandId.QUERY_DOMAIN_ADMINS, admins[0].ski)
    assert (answer.return_code, answer.reason) == (32, 32)


def test_remove_admin_with_revocation_quorum(unit: UnitDriver, admins: list[Administrator]) -> None:
    """Remove is signed by rev-thr admins; the removed admin is gone from the list."""
    unit.imprint_with(admins)
    assert unit.command(CommandId.REMOVE_ADMIN, admins[2].ski, admins[:2]).return_code == 0
    assert unit.installed_skis() == [admins[0].ski, admins[1].ski]


def test_zeroize_returns_to_imprint_mode_and_keeps_the_counter(
    unit: UnitDriver, admins: list[Administrator]
) -> None:
    """Zeroize empties the domain; the transaction counter stays monotonic (§6.1)."""
    unit.imprint_with(admins)
    zeroized = unit.command(CommandId.ZEROIZE_DOMAIN, b"", admins[:2])
    assert zeroized.return_code == 0
    assert unit.installed_skis() == []
    assert unit.attributes() == FRESH_ATTRIBUTES
    assert int.from_bytes(zeroized.counter, "big") == 5


def test_zeroize_with_one_signature_when_permitted(
    unit: UnitDriver, admins: list[Administrator]
) -> None:
    """Permission 0x40 (written by the SDK's attribute wrapper) lets one admin zeroize (§6.2)."""
    unit.imprint_with(admins)
    assert unit.command(CommandId.ZEROIZE_DOMAIN, b"", admins[:1]).return_code == 0


def test_device_certificate_chain_ends_with_96_60(unit: UnitDriver) -> None:
    """Index 0 and 1 are OA2 certificates; index 2 is beyond the chain (§3.9, §9 item 11)."""
    for index in (0, 1):
        certificate = unit.query(CommandId.QUERY_DEVICE_CERT, index.to_bytes(4, "big")).output
        assert len(certificate) == 672 and certificate[0] == 0x45
    beyond = unit.query(CommandId.QUERY_DEVICE_CERT, (2).to_bytes(4, "big"))
    assert (beyond.return_code, beyond.reason) == (96, 60)


def test_module_id_starts_with_the_listed_serial(
    emulator: CryptoUnitEmulator, unit: UnitDriver
) -> None:
    """§3.6: serial_number equals the first 8 ASCII bytes of the module id."""
    listed = emulator.list_crypto_units()["hsms"][0]  # type: ignore[index]
    module_id = unit.query(CommandId.QUERY_DOMAIN_ATTRIBUTES).module_id
    assert module_id[:8].decode("ascii") == listed["serial_number"]


def test_request_for_another_crypto_module_is_an_htp_error(
    emulator: CryptoUnitEmulator, unit: UnitDriver
) -> None:
    """A CM index that does not match the unit's location fails at the HTP level (§3.5)."""
    request = HTPRequest(7, Cprb(15, XcpInfoRequest(15, 3).encode())).encode()
    with pytest.raises(HTPResponseError, match="crypto module index"):
        decode_htp_response(emulator.send(unit.hsm_id, request))


def test_wrong_module_htp_error_uses_a_triple_the_sdk_message_table_knows(
    emulator: CryptoUnitEmulator, unit: UnitDriver
) -> None:
    """9-2-0, trimmed as the SDK trims, reads "Crypto Module index is not within ..."."""
    request = HTPRequest(7, Cprb(15, XcpInfoRequest(15, 3).encode())).encode()
    with pytest.raises(HTPResponseError) as raised:
        decode_htp_response(emulator.send(unit.hsm_id, request))
    error = raised.value
    assert (error.error_type, error.return_code.strip(), error.reason_code.strip()) == (
        " 9",
        "2",
        "0",
    )
    assert "Error message:  Crypto Module index is not within the allowed range." in str(error)


def test_zeroize_in_imprint_mode_needs_no_signature(
    unit: UnitDriver, admins: list[Administrator]
) -> None:
    """§7.4 step 2: the SDK's pre-emptive zeroize of an imprint-mode unit carries no signature."""
    unit.command(CommandId.ADD_ADMIN, admins[0].certificate())
    assert unit.command(CommandId.ZEROIZE_DOMAIN).return_code == 0
    assert unit.installed_skis() == []


def test_signer_infos_are_verified_even_in_imprint_mode(
    unit: UnitDriver, admins: list[Administrator]
) -> None:
    """§4.6 step 4: a SignerInfo that is present must be good even when none is required."""
    answer = unit.command(CommandId.ADD_ADMIN, admins[0].certificate(), admins[1:2])
    assert answer.return_code == 257
    assert unit.installed_skis() == []


def test_unknown_command_is_bad_arguments(unit: UnitDriver) -> None:
    """A command id outside the catalogue is answered with rc 7 in the signed block."""
    assert unit.command(0x00000007).return_code == 7  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "return_value"),
    [
        (AdminRequest(14, b"").encode(), 7),
        (AdminRequest(15, b"not a block").encode(), 7),
        (bytes.fromhex("3000"), 7),
        (AdminRequest(14, AdminBlock(0x0001000A, bytes(8)).encode()).encode(), 3),
    ],
    ids=["empty_block", "garbage_block", "empty_sequence", "request_for_domain_14"],
)
def test_unreadable_requests_get_the_three_element_early_error(
    unit: UnitDriver, payload: bytes, return_value: int
) -> None:
    """§3.7: problems before a block can be answered use the 3-element xcpAdminRsp."""
    response = decode_admin_response(unit.exchange(payload))
    assert (response.block, response.return_value) == (None, return_value)
