"""Refused admin commands: the EP11 codes, and a state file left byte-for-byte as it was (§4.6)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from signserv.tke.wire import CommandId, Permission, SignerInfo

if TYPE_CHECKING:
    from conftest import Administrator, UnitDriver

Refusal = Callable[..., None]


def test_replayed_counter(
    governed_unit: UnitDriver,
    admins: list[Administrator],
    new_admin: Callable[[str], Administrator],
    assert_refused_unchanged: Refusal,
) -> None:
    """Sending an accepted, signed request a second time is refused with 163."""
    outsider = new_admin("admin4")
    block = governed_unit.signed_block(CommandId.ADD_ADMIN, outsider.certificate())
    assert governed_unit.send_block(block, admins[:2]).return_code == 0
    assert_refused_unchanged(lambda: governed_unit.send_block(block, admins[:2]), 163)


def test_counter_not_above_current(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """A counter equal to the unit's current counter is refused with 163 (§4.4)."""
    block = governed_unit.signed_block(CommandId.REMOVE_ADMIN, admins[2].ski, counter_step=0)
    assert_refused_unchanged(lambda: governed_unit.send_block(block, admins[:2]), 163)


def test_quorum_one_short(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Removing an admin with one signature when the revocation threshold is 2: 208."""
    assert_refused_unchanged(
        lambda: governed_unit.command(CommandId.REMOVE_ADMIN, admins[2].ski, admins[:1]), 208
    )


def test_same_signer_twice_counts_once(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Distinct signers are counted: one admin signing twice is still one signature (208)."""
    assert_refused_unchanged(
        lambda: governed_unit.command(
            CommandId.REMOVE_ADMIN, admins[2].ski, [admins[0], admins[0]]
        ),
        208,
    )


def test_unknown_signer_ski(
    governed_unit: UnitDriver,
    admins: list[Administrator],
    new_admin: Callable[[str], Administrator],
    assert_refused_unchanged: Refusal,
) -> None:
    """A SignerInfo whose SKI is not an installed admin: 257."""
    outsider = new_admin("outsider")
    assert_refused_unchanged(
        lambda: governed_unit.command(CommandId.REMOVE_ADMIN, admins[2].ski, [admins[0], outsider]),
        257,
    )


def test_signer_info_over_different_block(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Signatures made over another block (remove admin3) presented with remove admin2: 192."""
    signed = governed_unit.signed_block(CommandId.REMOVE_ADMIN, admins[2].ski).encode()
    lifted = b"".join(admin.signer_info(signed).encode() for admin in admins[:2])
    block = governed_unit.signed_block(CommandId.REMOVE_ADMIN, admins[1].ski)
    assert_refused_unchanged(lambda: governed_unit.send_block(block, [], signer_infos=lifted), 192)


def test_raw_r_s_signature_is_malformed(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """A signature that is raw r||s instead of DER (r, s): 193 (§1.6)."""
    block = governed_unit.signed_block(CommandId.REMOVE_ADMIN, admins[2].ski)
    raw_r_s = SignerInfo(ski=admins[0].ski, signature=bytes(66) + bytes(66)).encode()
    valid = admins[1].signer_info(block.encode()).encode()
    assert_refused_unchanged(
        lambda: governed_unit.send_block(block, [], signer_infos=valid + raw_r_s), 193
    )


def test_truncated_signer_info_is_malformed(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """SignerInfos that do not split into whole SEQUENCEs: 193."""
    block = governed_unit.signed_block(CommandId.REMOVE_ADMIN, admins[2].ski)
    truncated = admins[0].signer_info(block.encode()).encode()[:-3]
    assert_refused_unchanged(
        lambda: governed_unit.send_block(block, [], signer_infos=truncated), 193
    )


def test_threshold_one_without_permission_0x10(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Vector 27: threshold 1 on a unit whose permissions lack 0x10 is refused 209/78."""
    without_threshold_one = 0x01FF2055 & ~Permission.THRESHOLD_ONE
    assert governed_unit.set_thresholds(2, 2, admins[:2], without_threshold_one).return_code == 0
    assert_refused_unchanged(
        lambda: governed_unit.set_thresholds(1, 2, admins[:2], without_threshold_one), 209, 78
    )
    assert_refused_unchanged(
        lambda: governed_unit.set_thresholds(2, 1, admins[:2], without_threshold_one), 209, 79
    )


def test_signature_threshold_above_admin_count(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Signature threshold 4 with three admins: 209/57."""
    assert_refused_unchanged(lambda: governed_unit.set_thresholds(4, 2, admins[:2]), 209, 57)


def test_revocation_threshold_above_admin_count(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Revocation threshold 4 with three admins: 209/58."""
    assert_refused_unchanged(lambda: governed_unit.set_thresholds(2, 4, admins[:2]), 209, 58)


def test_leaving_imprint_mode_with_revocation_threshold_zero(
    unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Leaving imprint mode needs a revocation threshold of at least 1: 209/36."""
    for admin in admins:
        unit.command(CommandId.ADD_ADMIN, admin.certificate())
    assert_refused_unchanged(lambda: unit.set_thresholds(2, 0, admins[:2]), 209, 36)


def test_leaving_imprint_mode_short_of_the_new_threshold(
    unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Leaving imprint mode at 3/3 signed by two admins: 208."""
    for admin in admins:
        unit.command(CommandId.ADD_ADMIN, admin.certificate())
    assert_refused_unchanged(lambda: unit.set_thresholds(3, 3, admins[:2]), 208)


def test_threshold_zero_outside_imprint_mode(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Only zeroize returns to imprint mode: thresholds 0 are 209/76 and 209/77."""
    assert_refused_unchanged(lambda: governed_unit.set_thresholds(0, 2, admins[:2]), 209, 76)
    assert_refused_unchanged(lambda: governed_unit.set_thresholds(2, 0, admins[:2]), 209, 77)


def test_removal_below_a_threshold(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """With 2/2 and two admins left, removing another would leave one: 209/66."""
    assert governed_unit.command(CommandId.REMOVE_ADMIN, admins[2].ski, admins[:2]).return_code == 0
    assert_refused_unchanged(
        lambda: governed_unit.command(CommandId.REMOVE_ADMIN, admins[1].ski, admins[:2]), 209, 66
    )


def test_locked_change_control_bit(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Once CHG sig-thr is reset, the threshold is frozen (209/71) and the bit stays reset (209/69)."""
    frozen = 0x01FF2055 & ~Permission.CHANGE_SIGNATURE_THRESHOLD
    assert governed_unit.set_thresholds(2, 2, admins[:2], frozen).return_code == 0
    assert_refused_unchanged(
        lambda: governed_unit.set_thresholds(3, 2, admins[:2], frozen), 209, 71
    )
    assert_refused_unchanged(lambda: governed_unit.set_thresholds(2, 2, admins[:2]), 209, 69)


def test_ninth_admin(
    unit: UnitDriver,
    admins: list[Administrator],
    new_admin: Callable[[str], Administrator],
    assert_refused_unchanged: Refusal,
) -> None:
    """At most eight admins: the ninth is refused 261/39."""
    eight = [new_admin(f"admin{number}") for number in range(8)]
    for admin in eight:
        assert unit.command(CommandId.ADD_ADMIN, admin.certificate()).return_code == 0
    ninth = new_admin("admin9")
    assert_refused_unchanged(
        lambda: unit.command(CommandId.ADD_ADMIN, ninth.certificate()), 261, 39
    )


def test_duplicate_admin(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Adding an installed admin again: 256/38."""
    assert_refused_unchanged(
        lambda: governed_unit.command(CommandId.ADD_ADMIN, admins[0].certificate(), admins[:2]),
        256,
        38,
    )


def test_certificate_whose_ski_extension_lies(
    unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """[EMULATOR POLICY] the SKI extension must equal SHA-256 of the point: else 32/32."""
    certificate = bytearray(admins[0].certificate())
    certificate[4 + 377] ^= 0xFF  # first SKI byte of the extension (§2.2 offset 377)
    assert_refused_unchanged(lambda: unit.command(CommandId.ADD_ADMIN, bytes(certificate)), 32, 32)


def test_malformed_admin_certificate_gets_rc_32_format_or_value_incorrect(
    unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """Bytes that are no certificate: rc 32 and no reason, which the SDK's table reads as
    "The format or value of the data is incorrect."."""
    truncated = admins[0].certificate()[:100]
    assert_refused_unchanged(lambda: unit.command(CommandId.ADD_ADMIN, truncated), 32)


def test_signed_command_for_another_instance(
    governed_unit: UnitDriver, admins: list[Administrator], assert_refused_unchanged: Refusal
) -> None:
    """A block whose module id is not this unit's: 3 (§4.6 step 1)."""
    block = governed_unit.signed_block(CommandId.REMOVE_ADMIN, admins[2].ski)
    foreign = dataclasses.replace(block, module_id=b"FFFFFFFF" + bytes(8))
    assert_refused_unchanged(lambda: governed_unit.send_block(foreign, admins[:2]), 3)
