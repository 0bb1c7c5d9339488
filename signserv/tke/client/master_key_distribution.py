"""One master key in every crypto unit, made in a recovery unit (TKE-REFERENCE §7.4 step 5).

``initialize_master_key`` generates a random key in the first recovery unit (straight into its
current register) and transfers it to every other unit: importer key → export → import →
commit → finalize. ``rotate_master_key`` generates a new key into the recovery unit's new
register, loads and commits it everywhere, and only then finalizes every unit, so the old key
stays current until every unit holds the new one. Both read the registers before each unit
and skip what is done, so a re-run after a failure continues where the first run stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from signserv.tke.client.master_key_transfer import (
    ChooseSigners,
    commit_pending_key,
    export_master_key,
    finalize_pending_key,
    generate_importer_key,
    import_key_parts,
    unit_step,
)
from signserv.tke.client.session import CryptoUnitSession
from signserv.tke.client.transition import (
    CURRENT_KEY_ONLY_OPERATIONAL,
    CURRENT_KEYS_DIFFER,
    EMPTY,
    NO_RECOVERY_UNIT,
    RECOVERY,
    TransferStep,
    transfer_steps,
)
from signserv.tke.client.workflows import WorkflowError
from signserv.tke.wire.commands import CommandId
from signserv.tke.wire.verification_pattern import same_master_key
from signserv.tke.wire.xcp_info import DomainInfo

Progress = Callable[[str], None]


def _signature_threshold(session: CryptoUnitSession) -> int:
    return session.attributes().signature_threshold


def _transfer(
    source: CryptoUnitSession,
    target: CryptoUnitSession,
    steps: Sequence[TransferStep],
    choose: ChooseSigners,
    *,
    export_pending: bool,
) -> None:
    """Run the remaining steps on ``target``; the key comes from ``source`` when it must."""
    for step in steps:
        with unit_step(target, step.value):
            if step is TransferStep.CLEAR_PENDING:
                target.run_signed(CommandId.CLEAR_PENDING_WK, b"", choose(target, 1))
            elif step is TransferStep.IMPORT:
                signer = choose(target, 1)[0]
                importer = generate_importer_key(target, signer)
                with unit_step(source, "export the master key"):
                    recipient_info = export_master_key(
                        source,
                        importer,
                        choose(source, _signature_threshold(source)),
                        pending=export_pending,
                    )
                import_key_parts(target, [recipient_info], signer)
            elif step is TransferStep.COMMIT:
                commit_pending_key(target, choose(target, _signature_threshold(target)))
            else:
                finalize_pending_key(target, choose(target, 1)[0])


def _recovery_units(sessions: Sequence[CryptoUnitSession]) -> list[CryptoUnitSession]:
    recovery = [session for session in sessions if session.unit.unit_type == RECOVERY]
    if not recovery:
        raise WorkflowError(NO_RECOVERY_UNIT)
    return recovery


def _generate_random_key(source: CryptoUnitSession, choose: ChooseSigners) -> DomainInfo:
    """A random key in the recovery unit: current register if empty, else the new one (§6.4).

    The VP is read back from the registers: the command's own output is optional (§5).
    """
    with unit_step(source, "generate a random master key"):
        source.run_signed(CommandId.GENERATE_RANDOM_WK, b"", choose(source, 1))
        return source.domain_info()


def initialize_master_key(
    sessions: Sequence[CryptoUnitSession], choose: ChooseSigners, progress: Progress
) -> bool:
    """Make every unit's current register hold the recovery unit's key; True if anything changed."""
    registers = {session.unit.hsm_id: session.domain_info() for session in sessions}
    recovery = _recovery_units(sessions)
    loaded = [s for s in recovery if registers[s.unit.hsm_id].current_status != EMPTY]
    changed = False
    if loaded:
        source = loaded[0]
        key_vp = registers[source.unit.hsm_id].current_vp
    elif any(info.current_status != EMPTY for info in registers.values()):
        raise WorkflowError(CURRENT_KEY_ONLY_OPERATIONAL)
    else:
        source = recovery[0]
        progress("Generating a random master key value....")
        key_vp = _generate_random_key(source, choose).current_vp
        changed = True
    targets = [session for session in sessions if session is not source]
    for number, target in enumerate(targets, start=1):
        steps = transfer_steps(registers[target.unit.hsm_id], key_vp)
        if steps:
            progress(
                f"Transferring the master key value to {number} of {len(targets)} crypto "
                f"units ({target.unit.location_text})...."
            )
            _transfer(source, target, steps, choose, export_pending=False)
            changed = True
    return changed


def _rotation_in_progress(
    source_vp: bytes, source_pending: bytes | None, others: list[bytes]
) -> bytes | None:
    """The new key an interrupted rotation was distributing, or None if none was under way."""
    if source_pending is not None:
        return source_pending
    if not others:
        return None
    if all(same_master_key(vp, source_vp) for vp in others):
        return source_vp
    raise WorkflowError(
        "new master key registers hold a key the recovery crypto unit does not: inspect them "
        "with cryptounit-mk and clear them with cryptounit-mk-clrnew"
    )


def rotate_master_key(
    sessions: Sequence[CryptoUnitSession], choose: ChooseSigners, progress: Progress
) -> None:
    """Load a new random key into every unit's new register, then make it current everywhere."""
    registers = {session.unit.hsm_id: session.domain_info() for session in sessions}
    source = _recovery_units(sessions)[0]
    source_info = registers[source.unit.hsm_id]
    pending_elsewhere = [
        info.pending_vp
        for hsm_id, info in registers.items()
        if hsm_id != source.unit.hsm_id and info.pending_status != EMPTY
    ]
    new_vp = _rotation_in_progress(
        source_info.current_vp,
        source_info.pending_vp if source_info.pending_status != EMPTY else None,
        pending_elsewhere,
    )
    if new_vp is None:
        currents = list(registers.values())
        if any(info.current_status == EMPTY for info in currents):
            raise WorkflowError(
                "every crypto unit needs a current master key before it can be rotated: "
                "use auto-init first"
            )
        if any(not same_master_key(i.current_vp, source_info.current_vp) for i in currents):
            raise WorkflowError(CURRENT_KEYS_DIFFER)
        progress("Generating a new random master key value....")
        new_vp = _generate_random_key(source, choose).pending_vp
    export_pending = source.domain_info().pending_status != EMPTY
    others = [session for session in sessions if session is not source]
    for number, target in enumerate(others, start=1):
        steps = transfer_steps(registers[target.unit.hsm_id], new_vp, finalize=False)
        if steps:
            progress(
                f"Loading the new master key value into {number} of {len(others)} crypto "
                f"units ({target.unit.location_text})...."
            )
            _transfer(source, target, steps, choose, export_pending=export_pending)
    source_steps = transfer_steps(source.domain_info(), new_vp, finalize=False)
    _transfer(source, source, source_steps, choose, export_pending=export_pending)
    progress("Activating the new master key in every crypto unit....")
    for target in [*others, source]:
        remaining = transfer_steps(target.domain_info(), new_vp)
        _transfer(source, target, remaining, choose, export_pending=export_pending)
