"""CheckTransition and Update planning of TKE-REFERENCE §7.3-§7.4 as pure functions.

Given the desired configuration and what each crypto unit holds, these functions return the
SDK's problem texts (verbatim, two spaces after periods included) or the signed commands that
reach the configuration, with the signers chosen deterministically in block order. Nothing
here talks to a crypto unit or a signing service. Unlike the SDK, a plan skips what is
already in place, so planning against a configured instance yields no commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from signserv.tke.client.workflows import MAX_ADMINISTRATORS, MAX_THRESHOLD, UnitStatus
from signserv.tke.wire.attributes import DomainAttributes
from signserv.tke.wire.commands import CommandId, Permission
from signserv.tke.wire.verification_pattern import same_master_key
from signserv.tke.wire.xcp_info import DomainInfo

MAX_NAME_BYTES = 30
RECOVERY = "recovery"
EMPTY = "Empty"

SIGNATURE_THRESHOLD_RANGE = "The signature threshold must be an integer between 1 and 8."
REVOCATION_THRESHOLD_RANGE = "The revocation threshold must be an integer between 1 and 8."
TOO_FEW_FOR_SIGNATURE = (
    "Not enough administrators are specified to meet the signature threshold value."
)
TOO_FEW_FOR_REVOCATION = (
    "Not enough administrators are specified to meet the revocation threshold value."
)
TOO_MANY_ADMINS = "No more than 8 administrators can be specified."
NAME_TOO_LONG = "An administrator name is too long.  Names must be 30 characters or less."
KEY_NOT_ACCESSIBLE = (
    "The signature key associated with {name} could not be accessed.  An attempt was made to "
    "use a signing service.  The signing service may not be running at the specified URL and "
    "port."
)
KEYS_NOT_UNIQUE = (
    "Signature keys are not unique.  The same signature key is specified for more than one "
    "administrator."
)
NO_RECOVERY_UNIT = "The service instance does not contain any recovery crypto units."
SHORT_OF_SIGNATURE_KEYS = (
    "Not enough signature keys for installed administrators are provided in the resource "
    "block to meet the current signature threshold."
)
SHORT_OF_REVOCATION_KEYS = (
    "Not enough signature keys for installed administrators are provided in the resource "
    "block to meet the current revocation threshold."
)
NAME_CHANGE = "You are not allowed to change the name of an existing adminstrator."
CURRENT_KEY_ONLY_OPERATIONAL = (
    "The current master key register is set in one or more operational crypto units but is "
    "not set in any recovery crypto units."
)
CURRENT_KEYS_DIFFER = (
    "Current master key registers are set in multiple crypto units but are not set to the "
    "same value."
)


@dataclass(frozen=True)
class BlockAdmin:
    """An administrator of the desired configuration, with its key's SKI."""

    name: str
    ski: bytes


@dataclass(frozen=True)
class UnitState:
    """What Query returns for one unit (§7.2), plus its permissions and mode."""

    status: UnitStatus
    attributes: DomainAttributes

    @property
    def installed(self) -> list[bytes]:
        """Installed administrator SKIs in the unit's order."""
        return [bytes.fromhex(admin.ski) for admin in self.status.administrators]


@dataclass(frozen=True)
class PlannedCommand:
    """One signed command for one unit; ``subject`` is the SKI an add or remove is about."""

    command: CommandId
    signers: tuple[bytes, ...]
    description: str
    subject: bytes = b""
    command_input: bytes = b""


def input_problems(
    signature: int, revocation: int, admins: Sequence[tuple[str, bytes | None]]
) -> list[str]:
    """§7.3 A1-A8 together, in the SDK's order: (name, SKI or None if its key is unusable).

    Thresholds and the administrator count first; then, per admin, a name too long and a
    key that cannot be used; the uniqueness of the keys only once every key works.
    """
    problems = []
    if not 1 <= signature <= MAX_THRESHOLD:
        problems.append(SIGNATURE_THRESHOLD_RANGE)
    if not 1 <= revocation <= MAX_THRESHOLD:
        problems.append(REVOCATION_THRESHOLD_RANGE)
    if len(admins) < signature:
        problems.append(TOO_FEW_FOR_SIGNATURE)
    if len(admins) < revocation:
        problems.append(TOO_FEW_FOR_REVOCATION)
    if len(admins) > MAX_ADMINISTRATORS:
        problems.append(TOO_MANY_ADMINS)
    for name, ski in admins:
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            problems.append(NAME_TOO_LONG)
        if ski is None:
            problems.append(KEY_NOT_ACCESSIBLE.format(name=name))
    skis = [ski for _, ski in admins]
    if None not in skis and len(set(skis)) != len(skis):
        problems.append(KEYS_NOT_UNIQUE)
    return problems


def as_if_zeroized(unit: UnitState) -> UnitState:
    """A unit in imprint mode is zeroized first (§7.4 step 2): plan it without its admins."""
    if not unit.attributes.imprint_mode:
        return unit
    return replace(unit, status=replace(unit.status, administrators=()))


def _unit_problems(unit: UnitState, admins: Sequence[BlockAdmin], revocation: int) -> list[str]:
    """§7.3 B3-B4 for one unit, with the §9 item 27 check added to rule (d)."""
    block = {admin.ski: admin for admin in admins}
    installed = unit.installed
    keep = [ski for ski in installed if ski in block]
    added = [admin for admin in admins if admin.ski not in installed]
    old = unit.attributes
    problems = []
    if len(keep) < old.signature_threshold:
        problems.append(SHORT_OF_SIGNATURE_KEYS)
    elif old.signature_threshold < old.revocation_threshold and revocation > len(keep):
        removed = len(installed) - len(keep)
        fits = len(keep) + len(added) + removed <= MAX_ADMINISTRATORS
        signable = len(keep) + len(added) >= old.revocation_threshold
        if not (fits and signable):
            problems.append(SHORT_OF_REVOCATION_KEYS)
    if not old.imprint_mode:
        problems.extend(
            NAME_CHANGE
            for admin in unit.status.administrators
            if bytes.fromhex(admin.ski) in block
            and block[bytes.fromhex(admin.ski)].name.strip() != admin.name.strip()
        )
    return problems


def _master_key_problems(units: Sequence[UnitState]) -> list[str]:
    """§7.3 B5: set current registers must agree and one of them must be a recovery unit's."""
    loaded = [unit.status for unit in units if unit.status.current_mk_status != EMPTY]
    if not loaded:
        return []
    sources = [status for status in loaded if status.unit_type == RECOVERY]
    if not sources:
        return [CURRENT_KEY_ONLY_OPERATIONAL]
    reference = bytes.fromhex(sources[0].current_mkvp)
    if any(not same_master_key(bytes.fromhex(s.current_mkvp), reference) for s in loaded):
        return [CURRENT_KEYS_DIFFER]
    return []


def state_problems(
    units: Sequence[UnitState], admins: Sequence[BlockAdmin], revocation: int
) -> list[str]:
    """§7.3 B1-B5 over every unit; messages may repeat, one per unit.

    A missing recovery unit is one problem among the others: checking goes on, as in the SDK.
    """
    problems = []
    if not any(unit.status.unit_type == RECOVERY for unit in units):
        problems.append(NO_RECOVERY_UNIT)
    for unit in units:
        problems.extend(_unit_problems(as_if_zeroized(unit), admins, revocation))
    return problems + _master_key_problems(units)


def configured_permissions(permissions: int, unit_type: str) -> int:
    """What the SDK's Set Attributes writes (§6.3): recovery units may export and make keys."""
    result = permissions | Permission.ZEROIZE_ONE_SIGN | Permission.WK_IMPORT
    result |= Permission.WK_ONE_PART
    if unit_type == RECOVERY:
        result |= Permission.RANDOM_WK | Permission.WK_EXPORT | Permission.DO_NOT_DISTURB
        return result & ~Permission.CHANGE_DO_NOT_DISTURB
    result &= ~Permission.WK_EXPORT
    if result & Permission.CHANGE_DO_NOT_DISTURB:
        result = (result | Permission.DO_NOT_DISTURB) & ~Permission.CHANGE_DO_NOT_DISTURB
    return result


def _set_attributes(
    attributes: DomainAttributes, signers: Sequence[bytes], signature: int, revocation: int
) -> PlannedCommand:
    return PlannedCommand(
        CommandId.SET_ATTRIBUTES,
        tuple(signers),
        f"set signature threshold {signature} and revocation threshold {revocation}",
        command_input=attributes.with_thresholds(signature, revocation),
    )


def _remove(ski: bytes, signers: Sequence[bytes]) -> PlannedCommand:
    return PlannedCommand(
        CommandId.REMOVE_ADMIN, tuple(signers), f"remove administrator {ski.hex()}", ski, ski
    )


def _add(admin: BlockAdmin, signers: Sequence[bytes]) -> PlannedCommand:
    return PlannedCommand(
        CommandId.ADD_ADMIN, tuple(signers), f"add administrator {admin.name}", admin.ski
    )


class Strategy(Enum):
    """The order of §7.4 step 4 that keeps every command signable."""

    REMOVE_FIRST = "A"
    LOWER_REVOCATION_FIRST = "B"
    ADD_FIRST = "C"


def choose_strategy(unit: UnitState, admins: Sequence[BlockAdmin], revocation: int) -> Strategy:
    """Rules (b)-(d) of §7.3 B3 for a unit without problems."""
    old = unit.attributes
    keep = [ski for ski in unit.installed if ski in {admin.ski for admin in admins}]
    if old.signature_threshold >= old.revocation_threshold:
        return Strategy.REMOVE_FIRST
    if revocation <= len(keep):
        return Strategy.LOWER_REVOCATION_FIRST
    return Strategy.ADD_FIRST


def plan_admin_changes(
    unit: UnitState, admins: Sequence[BlockAdmin], signature: int, revocation: int
) -> list[PlannedCommand]:
    """§7.4 steps 2 and 4 for one unit without problems: zeroize, remove, add, set attributes."""
    commands = []
    # §9 item 21: every unit in imprint mode, with or without admins, so attributes changed
    # while in imprint mode cannot make the later commands fail part-way.
    if unit.attributes.imprint_mode:
        commands.append(PlannedCommand(CommandId.ZEROIZE_DOMAIN, (), "zeroize (imprint mode)"))
    unit = as_if_zeroized(unit)
    old = unit.attributes
    wanted = {admin.ski for admin in admins}
    keep = [ski for ski in unit.installed if ski in wanted]
    removed = [ski for ski in unit.installed if ski not in wanted]
    added = [admin for admin in admins if admin.ski not in unit.installed]
    target = replace(
        old, permissions=configured_permissions(old.permissions, unit.status.unit_type)
    )
    signers = keep[: old.signature_threshold]
    thresholds = (old.signature_threshold, old.revocation_threshold, old.permissions)
    strategy = choose_strategy(unit, admins, revocation)
    if strategy is Strategy.LOWER_REVOCATION_FIRST:
        if removed and revocation != old.revocation_threshold:
            commands.append(_set_attributes(target, signers, old.signature_threshold, revocation))
            thresholds = (old.signature_threshold, revocation, target.permissions)
        commands.extend(_remove(ski, keep[:revocation]) for ski in removed)
        commands.extend(_add(admin, signers) for admin in added)
    elif strategy is Strategy.ADD_FIRST:
        commands.extend(_add(admin, signers) for admin in added)
        extended = keep + [admin.ski for admin in added]
        commands.extend(_remove(ski, extended[: old.revocation_threshold]) for ski in removed)
    else:
        commands.extend(_remove(ski, keep[: old.revocation_threshold]) for ski in removed)
        commands.extend(_add(admin, signers) for admin in added)
    if old.imprint_mode:
        signers = (keep + [admin.ski for admin in added])[:signature]
    if thresholds != (signature, revocation, target.permissions):
        commands.append(_set_attributes(target, signers, signature, revocation))
    return commands


class TransferStep(Enum):
    """What bringing a master key into one unit's registers still needs (§7.4 step 5)."""

    CLEAR_PENDING = "clear the new master key register"
    IMPORT = "load the new master key register"
    COMMIT = "commit the new master key register"
    FINALIZE = "set the master key immediately"


def transfer_steps(
    registers: DomainInfo, master_key_vp: bytes, *, finalize: bool = True
) -> list[TransferStep]:
    """The remaining steps, read from the registers, so an interrupted transfer resumes."""
    if registers.current_status != EMPTY and same_master_key(registers.current_vp, master_key_vp):
        return []
    tail = [TransferStep.FINALIZE] if finalize else []
    pending_holds_key = same_master_key(registers.pending_vp, master_key_vp)
    if registers.pending_status == "Full Committed" and pending_holds_key:
        return tail
    if registers.pending_status == "Full Uncommitted" and pending_holds_key:
        return [TransferStep.COMMIT, *tail]
    loading = [TransferStep.IMPORT, TransferStep.COMMIT, *tail]
    if registers.pending_status == EMPTY:
        return loading
    return [TransferStep.CLEAR_PENDING, *loading]
