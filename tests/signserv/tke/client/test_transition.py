"""CheckTransition and Update planning as pure functions (TKE-REFERENCE §7.3-§7.4, §9 item 27)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from signserv.tke.client import transition
from signserv.tke.client.transition import (
    BlockAdmin,
    Strategy,
    TransferStep,
    UnitState,
    choose_strategy,
    configured_permissions,
    input_problems,
    plan_admin_changes,
    state_problems,
    transfer_steps,
)
from signserv.tke.client.workflows import Administrator, UnitStatus
from signserv.tke.wire.attributes import DomainAttributes
from signserv.tke.wire.commands import DEFAULT_PERMISSIONS, CommandId
from signserv.tke.wire.verification_pattern import calc_vp
from signserv.tke.wire.xcp_info import DomainFlag, DomainInfo

A, B, C, D = (bytes([n]) * 32 for n in range(1, 5))
NAMES = {A: "alice", B: "bob", C: "carol", D: "dave"}
KEY_VP = calc_vp(bytes(32))
OTHER_VP = calc_vp(bytes([1]) * 32)


def unit(
    sig: int,
    rev: int,
    *installed: bytes,
    unit_type: str = "operational",
    permissions: int = DEFAULT_PERMISSIONS,
    current_vp: bytes | None = None,
) -> UnitState:
    """A unit with these thresholds and admins (named from NAMES)."""
    status = UnitStatus(
        location="[us-south].[AZ1-OP1].[01].[15]",
        hsm_id="unit",
        unit_type=unit_type,
        signature_threshold=sig,
        revocation_threshold=rev,
        administrators=tuple(Administrator(NAMES[ski], ski.hex()) for ski in installed),
        current_mk_status="Empty" if current_vp is None else "Valid",
        current_mkvp=(current_vp or bytes(32)).hex(),
        new_mk_status="Empty",
        new_mkvp=bytes(32).hex(),
    )
    return UnitState(status, DomainAttributes(sig, rev, permissions, 0))


def configured(sig: int, rev: int, *installed: bytes, unit_type: str = "operational") -> UnitState:
    """A unit as a previous apply leaves it: SDK permissions already written."""
    state = unit(sig, rev, *installed, unit_type=unit_type)
    permissions = configured_permissions(DEFAULT_PERMISSIONS, unit_type)
    return replace(state, attributes=replace(state.attributes, permissions=permissions))


def block(*skis: bytes) -> list[BlockAdmin]:
    """Block admins named from NAMES."""
    return [BlockAdmin(NAMES[ski], ski) for ski in skis]


def steps(
    plan: list[transition.PlannedCommand],
) -> list[tuple[CommandId, bytes, tuple[bytes, ...]]]:
    """(command, subject, signers) of each planned command."""
    return [(command.command, command.subject, command.signers) for command in plan]


def test_sdk_permissions_from_the_domain_default() -> None:
    """§6.3: recovery 0x01FF205F, operational 0x01FF2055."""
    assert configured_permissions(DEFAULT_PERMISSIONS, "recovery") == 0x01FF205F
    assert configured_permissions(DEFAULT_PERMISSIONS, "operational") == 0x01FF2055
    assert configured_permissions(0x01FF2055, "failover") == 0x01FF2055


def test_update_zeroizes_every_imprint_mode_unit_even_without_administrators() -> None:
    """§9 item 21: the SDK zeroizes each unit with signature threshold 0 before adding admins."""
    for installed in ((), (A,)):
        plan = plan_admin_changes(unit(0, 0, *installed), block(A, B), 1, 1)
        assert steps(plan)[0] == (CommandId.ZEROIZE_DOMAIN, b"", ())


def test_fresh_unit_adds_unsigned_then_leaves_imprint_signed_by_new_threshold() -> None:
    """Imprint mode: zeroize, adds need no signature; Set Attributes needs the new sig-thr
    signers (TKE-REFERENCE §10 vector 26)."""
    plan = plan_admin_changes(unit(0, 0), block(A, B, C), 2, 2)
    assert steps(plan) == [
        (CommandId.ZEROIZE_DOMAIN, b"", ()),
        (CommandId.ADD_ADMIN, A, ()),
        (CommandId.ADD_ADMIN, B, ()),
        (CommandId.ADD_ADMIN, C, ()),
        (CommandId.SET_ATTRIBUTES, b"", (A, B)),
    ]


def test_imprint_unit_with_admins_is_zeroized_first() -> None:
    """§7.4 step 2: a unit in imprint mode that has admins starts from a zeroize."""
    plan = plan_admin_changes(unit(0, 0, D), block(A), 1, 1)
    assert [command.command for command in plan] == [
        CommandId.ZEROIZE_DOMAIN,
        CommandId.ADD_ADMIN,
        CommandId.SET_ATTRIBUTES,
    ]


def test_configured_unit_needs_nothing() -> None:
    """Same admins, thresholds and permissions: no command (a second apply changes nothing)."""
    assert plan_admin_changes(configured(2, 2, A, B, C), block(A, B, C), 2, 2) == []


def test_strategy_a_removes_then_adds() -> None:
    """sig ≥ rev: removals by rev-thr kept admins, adds by sig-thr kept admins."""
    state = configured(2, 1, A, B, C)
    assert choose_strategy(state, block(A, B, D), 2) is Strategy.REMOVE_FIRST
    assert steps(plan_admin_changes(state, block(A, B, D), 2, 1)) == [
        (CommandId.REMOVE_ADMIN, C, (A,)),
        (CommandId.ADD_ADMIN, D, (A, B)),
    ]


def test_strategy_b_lowers_revocation_before_removing() -> None:
    """sig < rev and new rev ≤ kept: Set Attributes (old sig, new rev) comes first."""
    state = configured(1, 3, A, B, C)
    assert choose_strategy(state, block(A, B, D), 2) is Strategy.LOWER_REVOCATION_FIRST
    plan = plan_admin_changes(state, block(A, B, D), 1, 2)
    assert steps(plan) == [
        (CommandId.SET_ATTRIBUTES, b"", (A,)),
        (CommandId.REMOVE_ADMIN, C, (A, B)),
        (CommandId.ADD_ADMIN, D, (A,)),
    ]


def test_strategy_c_adds_before_removing() -> None:
    """sig < rev and new rev > kept: new admins are installed first and sign the removals."""
    state = configured(1, 2, A, B, C)
    assert choose_strategy(state, block(A, D), 2) is Strategy.ADD_FIRST
    assert steps(plan_admin_changes(state, block(A, D), 1, 2)) == [
        (CommandId.ADD_ADMIN, D, (A,)),
        (CommandId.REMOVE_ADMIN, B, (A, D)),
        (CommandId.REMOVE_ADMIN, C, (A, D)),
    ]


def test_sdk_gap_item_27_is_reported() -> None:
    """Unit 1/3 with A,B,C; block {A, D} rev 2: too few signers for the removals."""
    assert state_problems([unit(1, 3, A, B, C, unit_type="recovery")], block(A, D), 2) == [
        transition.SHORT_OF_REVOCATION_KEYS
    ]


def test_state_problems() -> None:
    """Rule (a), renames outside imprint mode only, no recovery unit."""
    recovery = unit(2, 2, A, B, unit_type="recovery")
    assert state_problems([recovery], block(A, C), 2) == [transition.SHORT_OF_SIGNATURE_KEYS]
    renamed = [BlockAdmin("alicia", A), BlockAdmin("bob", B)]
    assert state_problems([recovery], renamed, 2) == [transition.NAME_CHANGE]
    assert state_problems([unit(0, 0, A, unit_type="recovery")], renamed, 2) == []
    assert state_problems([unit(0, 0)], block(A), 1) == [transition.NO_RECOVERY_UNIT]


def test_missing_recovery_unit_is_one_problem_and_checking_goes_on() -> None:
    """As the SDK: no recovery unit, and each unit's own problems are still reported."""
    operational = unit(2, 2, A, B, current_vp=KEY_VP)
    assert state_problems([operational, operational], block(A, C), 2) == [
        transition.NO_RECOVERY_UNIT,
        transition.SHORT_OF_SIGNATURE_KEYS,
        transition.SHORT_OF_SIGNATURE_KEYS,
        transition.CURRENT_KEY_ONLY_OPERATIONAL,
    ]


def test_master_key_problems() -> None:
    """§7.3 B5: a key only in operational units; keys that differ."""
    recovery = unit(0, 0, unit_type="recovery")
    operational = unit(0, 0, current_vp=KEY_VP)
    assert state_problems([operational, recovery], block(A), 1) == [
        transition.CURRENT_KEY_ONLY_OPERATIONAL
    ]
    loaded_recovery = unit(0, 0, unit_type="recovery", current_vp=OTHER_VP)
    assert state_problems([operational, loaded_recovery], block(A), 1) == [
        transition.CURRENT_KEYS_DIFFER
    ]


def test_input_problems_count_name_bytes() -> None:
    """Vector 10: 15 times 'é' is 30 bytes and fits; 16 times does not."""
    assert input_problems(1, 1, [("é" * 15, A)]) == []
    assert input_problems(1, 1, [("é" * 16, A)]) == [transition.NAME_TOO_LONG]


def test_key_problems() -> None:
    """An unusable key is named; the uniqueness check waits until every key works."""
    assert input_problems(1, 1, [("alice", None), ("bob", A)]) == [
        transition.KEY_NOT_ACCESSIBLE.format(name="alice")
    ]
    assert input_problems(1, 1, [("alice", None), ("bob", None)]) == [
        transition.KEY_NOT_ACCESSIBLE.format(name="alice"),
        transition.KEY_NOT_ACCESSIBLE.format(name="bob"),
    ]
    assert input_problems(1, 1, [("alice", A), ("bob", A)]) == [transition.KEYS_NOT_UNIQUE]


def test_input_and_key_problems_are_reported_together() -> None:
    """As the SDK's checkInputs: thresholds, then per admin its long name and unusable key."""
    long_name = "x" * 31
    assert input_problems(0, 3, [(long_name, None), ("bob", B)]) == [
        transition.SIGNATURE_THRESHOLD_RANGE,
        transition.TOO_FEW_FOR_REVOCATION,
        transition.NAME_TOO_LONG,
        transition.KEY_NOT_ACCESSIBLE.format(name=long_name),
    ]


def registers(current: bytes | None, pending: bytes | None, committed: bool = False) -> DomainInfo:
    """Domain info with these registers."""
    flags = 0
    if current is not None:
        flags |= DomainFlag.CURRENT_WK_PRESENT
    if pending is not None:
        flags |= DomainFlag.PENDING_WK_PRESENT
        if committed:
            flags |= DomainFlag.PENDING_WK_COMMITTED
    return DomainInfo(15, current or bytes(32), pending or bytes(32), flags)


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (registers(KEY_VP, None), []),
        (registers(None, None), [TransferStep.IMPORT, TransferStep.COMMIT, TransferStep.FINALIZE]),
        (registers(None, KEY_VP), [TransferStep.COMMIT, TransferStep.FINALIZE]),
        (registers(None, KEY_VP, committed=True), [TransferStep.FINALIZE]),
        (
            registers(None, OTHER_VP),
            [
                TransferStep.CLEAR_PENDING,
                TransferStep.IMPORT,
                TransferStep.COMMIT,
                TransferStep.FINALIZE,
            ],
        ),
        (registers(OTHER_VP, KEY_VP, committed=True), [TransferStep.FINALIZE]),
    ],
    ids=["done", "empty", "loaded", "committed", "other_key_pending", "rotation_committed"],
)
def test_transfer_resumes_from_the_registers(
    info: DomainInfo, expected: list[TransferStep]
) -> None:
    """What a unit still needs is read from its registers, so re-runs continue."""
    assert transfer_steps(info, KEY_VP) == expected


def test_vp_comparison_uses_28_bytes() -> None:
    """§9 item 17: older firmware's last four VP bytes do not matter."""
    legacy = KEY_VP[:28] + b"\xff" * 4
    assert transfer_steps(registers(legacy, None), KEY_VP) == []


POOL = [bytes([n]) * 32 for n in range(1, 9)]
NAMES.update({ski: f"admin{ski[0]}" for ski in POOL if ski not in NAMES})


@st.composite
def installed_units(draw: st.DrawFn) -> UnitState:
    """A unit with 0-8 of the pool installed, in imprint mode or with valid thresholds."""
    installed = draw(st.lists(st.sampled_from(POOL), unique=True, max_size=8))
    if not installed or draw(st.booleans()):
        return unit(0, 0, *installed)
    sig = draw(st.integers(1, len(installed)))
    rev = draw(st.integers(1, len(installed)))
    return unit(sig, rev, *installed)


@st.composite
def transitions(draw: st.DrawFn) -> tuple[UnitState, list[BlockAdmin], int, int]:
    """A unit and a block that keeps some of its admins and adds others from the pool."""
    state = draw(installed_units())
    others = [ski for ski in POOL if ski not in state.installed]
    kept = draw(st.lists(st.sampled_from(state.installed), unique=True)) if state.installed else []
    added = draw(st.lists(st.sampled_from(others), unique=True)) if others else []
    skis = draw(st.permutations(kept + added))
    assume(skis)
    sig, rev = draw(st.integers(1, len(skis))), draw(st.integers(1, len(skis)))
    return state, block(*skis), sig, rev


def execute(state: UnitState, plan: list[transition.PlannedCommand]) -> tuple[set[bytes], int, int]:
    """Run a plan on a model of §6.2's quorum rules, asserting each command would be accepted."""
    admins = list(state.installed)
    sig, rev = state.attributes.signature_threshold, state.attributes.revocation_threshold
    for command in plan:
        signers = set(command.signers)
        assert signers <= set(admins) and len(signers) == len(command.signers)
        if command.command is CommandId.ZEROIZE_DOMAIN:
            assert sig == 0
            admins = []
        elif command.command is CommandId.ADD_ADMIN:
            assert len(signers) >= sig and command.subject not in admins
            admins.append(command.subject)
            assert len(admins) <= 8
        elif command.command is CommandId.REMOVE_ADMIN:
            assert len(signers) >= (rev if sig else 0)
            admins.remove(command.subject)
            assert not sig or len(admins) >= max(sig, rev)
        else:
            new_sig, new_rev = (
                int.from_bytes(command.command_input[i : i + 4], "big") for i in (4, 12)
            )
            assert len(signers) >= (new_sig if sig == 0 else sig)
            assert max(new_sig, new_rev) <= len(admins)
            sig, rev = new_sig, new_rev
    return set(admins), sig, rev


@settings(max_examples=500, deadline=None)
@example((unit(1, 3, A, B, C), block(A, D), 1, 2))
@given(transitions())
def test_every_plan_without_problems_is_accepted_and_reaches_the_block(
    case: tuple[UnitState, list[BlockAdmin], int, int],
) -> None:
    """No problem reported means every planned command meets its quorum (no §9 item 27 panic)
    and the unit ends with exactly the block's admins and thresholds; planning again from
    there yields nothing."""
    state, admins, sig, rev = case
    recovery = replace(state, status=replace(state.status, unit_type="recovery"))
    if state_problems([recovery], admins, rev):
        return
    final_admins, final_sig, final_rev = execute(state, plan_admin_changes(state, admins, sig, rev))
    assert (final_admins, final_sig, final_rev) == ({admin.ski for admin in admins}, sig, rev)
    settled = configured(sig, rev, *(admin.ski for admin in admins))
    assert plan_admin_changes(settled, admins, sig, rev) == []
