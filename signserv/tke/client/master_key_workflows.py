"""The plug-in's manual master-key commands: ``cryptounit-mk``, ``-mk-load``, ``-commit``,
``-setimm``, ``-clrnew`` and ``-clrcur`` over the selected crypto units (TKE-REFERENCE §6.4).

Like the admin workflows, each command first reads every selected unit and chooses its
signers, so a unit in imprint mode, a register in the wrong state or a missing signature key
stops the run before any unit changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from signserv.secret import Secret
from signserv.tke.client.master_key_transfer import (
    commit_pending_key,
    finalize_pending_key,
    generate_importer_key,
    import_key_parts,
    unit_step,
    wrap_key_parts,
)
from signserv.tke.client.session import CommandSigner, CryptoUnitSession
from signserv.tke.client.signers import KeyRing
from signserv.tke.client.workflows import UnitChange, WorkflowError
from signserv.tke.wire.attributes import DomainAttributes
from signserv.tke.wire.commands import CommandId
from signserv.tke.wire.verification_pattern import calc_vp, same_master_key
from signserv.tke.wire.xcp_info import DomainInfo

FULL_UNCOMMITTED = "Full Uncommitted"
FULL_COMMITTED = "Full Committed"
EMPTY = "Empty"
VALID = "Valid"


@dataclass(frozen=True)
class MasterKeyRegisters:
    """What ``cryptounit-mk`` shows for one unit: both registers' states and VPs (hex)."""

    location: str
    unit_type: str
    current_status: str
    current_vp: str
    new_status: str
    new_vp: str


def master_key_registers(sessions: Sequence[CryptoUnitSession]) -> list[MasterKeyRegisters]:
    """The register states and verification patterns of every unit."""
    registers = []
    for session in sessions:
        info = session.domain_info()
        registers.append(
            MasterKeyRegisters(
                location=session.unit.location_text,
                unit_type=session.unit.unit_type,
                current_status=info.current_status,
                current_vp=info.current_vp.hex(),
                new_status=info.pending_status,
                new_vp=info.pending_vp.hex(),
            )
        )
    return registers


@dataclass(frozen=True)
class _RegisterCommand:
    """A master-key command: which register state it needs and how many signatures."""

    action: str
    required_new_status: str | None
    signatures: Callable[[DomainAttributes], int]
    run: Callable[[CryptoUnitSession, Sequence[CommandSigner]], None]
    already_done: Callable[[DomainInfo], bool] = lambda _info: False


@dataclass(frozen=True)
class _Prepared:
    session: CryptoUnitSession
    signers: Sequence[CommandSigner]


def _prepare(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    command: _RegisterCommand,
    signing_keys: Sequence[str] | None,
) -> list[_Prepared]:
    """Check every unit and choose its signers before any of them changes.

    Units already in the state the command leads to are left out, so a re-run after a
    failure on one unit goes on with the others.
    """
    if not sessions:
        raise WorkflowError("no crypto units are selected: select some with cryptounit-add")
    prepared = []
    for session in sessions:
        location = session.unit.location_text
        attributes = session.attributes()
        if attributes.imprint_mode:
            raise WorkflowError(
                f"crypto unit {location} is in imprint mode: add administrators and leave "
                "imprint mode before working with master keys"
            )
        info = session.domain_info()
        if command.already_done(info):
            continue
        wanted = command.required_new_status
        if wanted is not None and info.pending_status != wanted:
            raise WorkflowError(
                f"cannot {command.action} in crypto unit {location}: its new master key "
                f"register is {info.pending_status}, not {wanted}"
            )
        signers = key_ring.installed_signers(
            session.admin_skis(),
            command.signatures(attributes),
            location=location,
            candidates=signing_keys,
        )
        prepared.append(_Prepared(session, signers))
    return prepared


def _run(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    command: _RegisterCommand,
    signing_keys: Sequence[str] | None,
) -> list[UnitChange]:
    changes = []
    for prepared in _prepare(sessions, key_ring, command, signing_keys):
        with unit_step(prepared.session, command.action):
            command.run(prepared.session, prepared.signers)
        changes.append(
            UnitChange(
                location=prepared.session.unit.location_text,
                signed_by=tuple(signer.label for signer in prepared.signers),
            )
        )
    return changes


def _combined(parts: Sequence[Secret[bytes]]) -> Secret[bytes]:
    """The master key the parts make: their XOR (§6.5)."""
    key = bytes(len(parts[0].reveal()))
    for part in parts:
        key = bytes(a ^ b for a, b in zip(key, part.reveal(), strict=True))
    return Secret(key)


def _one_signature(_: DomainAttributes) -> int:
    return 1


def _signature_threshold(attributes: DomainAttributes) -> int:
    return attributes.signature_threshold


def load_master_key(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    parts: Sequence[Secret[bytes]],
    *,
    signing_keys: Sequence[str] | None = None,
) -> list[UnitChange]:
    """Load the XOR of ``parts`` into every unit's empty new register (Full Uncommitted);
    units whose new register already holds that key are left as they are.

    Per unit: a fresh importer key, each part wrapped for it, one Import WK whose inner
    request per part is signed by one administrator (§4.5).
    """
    if not parts:
        raise WorkflowError("choose at least one master key part to load")

    def load(session: CryptoUnitSession, signers: Sequence[CommandSigner]) -> None:
        importer = generate_importer_key(session, signers[0])
        import_key_parts(session, wrap_key_parts(importer, parts), signers[0])

    loaded_vp = calc_vp(_combined(parts).reveal())

    def already_loaded(info: DomainInfo) -> bool:
        return info.pending_status != EMPTY and same_master_key(info.pending_vp, loaded_vp)

    command = _RegisterCommand(
        "load the new master key register", EMPTY, _one_signature, load, already_loaded
    )
    return _run(sessions, key_ring, command, signing_keys)


def commit_master_key(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    *,
    signing_keys: Sequence[str] | None = None,
) -> list[UnitChange]:
    """Commit every unit's loaded new register, signed by signature-threshold administrators."""
    command = _RegisterCommand(
        "commit the new master key register",
        FULL_UNCOMMITTED,
        _signature_threshold,
        commit_pending_key,
        lambda info: info.pending_status == FULL_COMMITTED,
    )
    return _run(sessions, key_ring, command, signing_keys)


def set_master_key_immediately(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    *,
    signing_keys: Sequence[str] | None = None,
) -> list[UnitChange]:
    """Move every unit's committed new key into its current register (finalize, 1 signature);
    units already set (new register Empty, current Valid) are left as they are."""
    command = _RegisterCommand(
        "set the master key immediately",
        FULL_COMMITTED,
        _one_signature,
        lambda session, signers: finalize_pending_key(session, signers[0]),
        lambda info: info.pending_status == EMPTY and info.current_status == VALID,
    )
    return _run(sessions, key_ring, command, signing_keys)


def _clear(command_id: CommandId) -> Callable[[CryptoUnitSession, Sequence[CommandSigner]], None]:
    def clear(session: CryptoUnitSession, signers: Sequence[CommandSigner]) -> None:
        session.run_signed(command_id, b"", signers)

    return clear


def clear_new_master_key(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    *,
    signing_keys: Sequence[str] | None = None,
) -> list[UnitChange]:
    """Empty every unit's new master key register (1 signature)."""
    command = _RegisterCommand(
        "clear the new master key register",
        None,
        _one_signature,
        _clear(CommandId.CLEAR_PENDING_WK),
    )
    return _run(sessions, key_ring, command, signing_keys)


def clear_current_master_key(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    *,
    signing_keys: Sequence[str] | None = None,
) -> list[UnitChange]:
    """Empty every unit's current master key register (signature-threshold signatures)."""
    command = _RegisterCommand(
        "clear the current master key register",
        None,
        _signature_threshold,
        _clear(CommandId.CLEAR_CURRENT_WK),
    )
    return _run(sessions, key_ring, command, signing_keys)
