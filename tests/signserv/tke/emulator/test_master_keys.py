"""Master-key registers: random WK, importer key, export, import, commit, finalize (§5, §6.4-§6.5, §7.4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from signserv.tke.wire import (
    AdminBlock,
    AdminRequest,
    CommandId,
    ParameterTag,
    build_kph_certificate,
    calc_vp,
    decode_parameter_map,
    encode_parameter_map,
    encode_signer_infos,
    export_request_parameters,
    find_parameter,
    same_master_key,
)
from signserv.tke.wire.key_transport import wrap_key_for
from signserv.tke.wire.spki import parse_p521_spki

if TYPE_CHECKING:
    from conftest import Administrator, UnitDriver

Refusal = Callable[..., None]
P521_IMPORTER = (3).to_bytes(4, "big")


def import_request(target: UnitDriver, recipient_info: bytes, signer: Administrator) -> AdminBlock:
    """§4.5: an unsigned outer block whose input is one inner request signed by ``signer``."""
    outer = target.signed_block(CommandId.IMPORT_WK)
    inner = AdminBlock(
        CommandId.IMPORT_WK, outer.domain_id, outer.module_id, outer.counter, recipient_info
    ).encode()
    inner_request = AdminRequest(
        outer.domain, inner, encode_signer_infos([signer.signer_info(inner)])
    ).encode()
    return AdminBlock(outer.command, outer.domain_id, outer.module_id, outer.counter, inner_request)


def transfer_master_key(
    source: UnitDriver, target: UnitDriver, admins: list[Administrator]
) -> bytes:
    """Importer key on the target, export on the source, import on the target; the RecipientInfo."""
    spki = target.command(CommandId.GENERATE_IMPORTER_KEY, P521_IMPORTER, admins[:1]).output
    kph = build_kph_certificate(parse_p521_spki(spki))
    parameters = encode_parameter_map(export_request_parameters(kph))
    exported = source.command(CommandId.EXPORT_WK, parameters, admins[:2])
    assert exported.return_code == 0
    recipient_info = find_parameter(
        decode_parameter_map(exported.output), ParameterTag.ENCRYPTED_KEY_PART, 0
    )
    imported = target.send_block(import_request(target, recipient_info, admins[0]), [])
    assert imported.return_code == 0
    return recipient_info


@pytest.fixture
def transferred(
    recovery: UnitDriver, operational: UnitDriver, admins: list[Administrator]
) -> bytes:
    """A random key on the recovery unit, imported (pending) on the operational unit."""
    recovery.command(CommandId.GENERATE_RANDOM_WK, b"", admins[:1])
    return transfer_master_key(recovery, operational, admins)


def test_master_key_reaches_operational_unit_with_equal_vp(
    recovery: UnitDriver, operational: UnitDriver, admins: list[Administrator]
) -> None:
    """The §7.4 step 5 sequence ends with equal current VPs and empty pending registers."""
    generated = recovery.command(CommandId.GENERATE_RANDOM_WK, b"", admins[:1])
    assert generated.return_code == 0
    assert recovery.domain_info().current_status == "Valid"

    transfer_master_key(recovery, operational, admins)
    pending = operational.domain_info()
    assert pending.pending_status == "Full Uncommitted"
    assert pending.pending_vp == generated.output

    commit = operational.command(CommandId.COMMIT_WK, pending.pending_vp, admins[:2])
    assert commit.return_code == 0
    assert operational.domain_info().pending_status == "Full Committed"
    finalize = operational.command(CommandId.FINALIZE_WK, pending.pending_vp, admins[:1])
    assert finalize.return_code == 0

    final = operational.domain_info()
    assert (final.current_status, final.pending_status) == ("Valid", "Empty")
    assert same_master_key(final.current_vp, recovery.domain_info().current_vp)


def test_second_random_key_goes_to_pending(
    recovery: UnitDriver, admins: list[Administrator]
) -> None:
    """§6.4: with the current register full, a random key fills the pending register."""
    recovery.command(CommandId.GENERATE_RANDOM_WK, b"", admins[:1])
    second = recovery.command(CommandId.GENERATE_RANDOM_WK, b"", admins[:1])
    info = recovery.domain_info()
    assert info.pending_status == "Full Uncommitted" and info.pending_vp == second.output


def test_clear_registers(recovery: UnitDriver, admins: list[Administrator]) -> None:
    """Clear pending (1 signature) and clear current (sig-thr signatures) empty the registers."""
    recovery.command(CommandId.GENERATE_RANDOM_WK, b"", admins[:1])
    recovery.command(CommandId.GENERATE_RANDOM_WK, b"", admins[:1])
    assert recovery.command(CommandId.CLEAR_PENDING_WK, b"", admins[:1]).return_code == 0
    assert recovery.command(CommandId.CLEAR_CURRENT_WK, b"", admins[:2]).return_code == 0
    info = recovery.domain_info()
    assert (info.current_status, info.pending_status) == ("Empty", "Empty")


def test_master_key_commands_in_imprint_mode(
    unit: UnitDriver, assert_refused_unchanged: Refusal
) -> None:
    """[EMULATOR POLICY] §6.2: WK operations in imprint mode are refused with 179."""
    assert_refused_unchanged(lambda: unit.command(CommandId.GENERATE_RANDOM_WK), 179)


def test_random_key_without_permission_0x08(
    operational: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Operational permissions lack 0x08: random WK is refused 80/52."""
    assert_refused_unchanged(
        lambda: operational.command(CommandId.GENERATE_RANDOM_WK, b"", admins[:1]), 80, 52
    )


@pytest.mark.usefixtures("transferred")
def test_export_without_permission_0x02(
    operational: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """An operational unit (no 0x02) refuses to export its master key: 80/131."""
    vp = operational.domain_info().pending_vp
    operational.command(CommandId.COMMIT_WK, vp, admins[:2])
    operational.command(CommandId.FINALIZE_WK, vp, admins[:1])
    kph = build_kph_certificate(admins[0].point)
    parameters = encode_parameter_map(export_request_parameters(kph))
    assert_refused_unchanged(
        lambda: operational.command(CommandId.EXPORT_WK, parameters, admins[:2]), 80, 131
    )


@pytest.mark.usefixtures("transferred")
def test_commit_with_wrong_verification_pattern(
    operational: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Commit names the pending key by VP; another VP is refused 101/48."""
    assert_refused_unchanged(
        lambda: operational.command(CommandId.COMMIT_WK, calc_vp(bytes(32)), admins[:2]), 101, 48
    )


def test_import_part_signed_by_outsider(
    transferred: bytes,
    operational: UnitDriver,
    new_admin: Callable[[str], Administrator],
    assert_refused_unchanged: Refusal,
) -> None:
    """The inner request of Import WK is verified like any command: an outsider is 257."""
    block = import_request(operational, transferred, new_admin("outsider"))
    assert_refused_unchanged(lambda: operational.send_block(block, []), 257)


def test_import_part_wrapping_a_24_byte_key_is_bad_input(
    operational: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """A signed Import WK whose part unwraps to 24 bytes, not 32, is rc 33; nothing changes."""
    spki = operational.command(CommandId.GENERATE_IMPORTER_KEY, P521_IMPORTER, admins[:1]).output
    short_key_wrap = wrap_key_for(parse_p521_spki(spki), bytes(range(24))).encode()
    block = import_request(operational, short_key_wrap, admins[0])
    assert_refused_unchanged(lambda: operational.send_block(block, []), 33)
