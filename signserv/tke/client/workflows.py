"""Crypto-unit administration as the TKE CLI does it: admins, thresholds, imprint mode, zeroize.

Every workflow first reads each selected unit and chooses its signers, so a missing signature
key stops the run before any unit changes; then it sends one signed command per unit and
reports which SIGNSERVKEYS keys signed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from signserv.errors import SignservError
from signserv.tke.client.session import CommandSigner, CryptoUnitSession
from signserv.tke.client.signers import KeyRing, NotEnoughSignatureKeys
from signserv.tke.errors import CryptoUnitRefused, TKEError
from signserv.tke.wire.admin_cert import encode_admin_name
from signserv.tke.wire.attributes import DomainAttributes
from signserv.tke.wire.commands import CommandId, Permission
from signserv.tke.wire.verification_pattern import same_master_key

MAX_ADMINISTRATORS = 8
MAX_THRESHOLD = 8


class WorkflowError(TKEError):
    """A workflow cannot run as asked; nothing was sent to any crypto unit."""


class InvalidWorkflowInput(WorkflowError, ValueError):
    """A threshold, name or SKI given by the user is out of range or malformed."""


class CommandFailedOnUnit(TKEError):
    """A command failed on a crypto unit; ``applied`` lists the units that had accepted it."""

    def __init__(self, location: str, error: SignservError, applied: list[str]) -> None:
        already = f"; already applied to {', '.join(applied)}" if applied else ""
        super().__init__(f"crypto unit {location}: {error}{already}")
        self.location = location
        self.error = error
        self.applied = applied


class CommandRefusedOnUnit(CommandFailedOnUnit):
    """A crypto unit refused a command; ``applied`` lists the units that had accepted it."""

    def __init__(self, location: str, refusal: CryptoUnitRefused, applied: list[str]) -> None:
        super().__init__(location, refusal, applied)
        self.refusal = refusal


@dataclass(frozen=True)
class Administrator:
    """An installed administrator: the trimmed certificate name and the SKI in hex."""

    name: str
    ski: str


@dataclass(frozen=True)
class UnitStatus:
    """What ``cryptounit-admins`` and ``cryptounit-compare`` show for one unit (§7.2)."""

    location: str
    hsm_id: str
    unit_type: str
    signature_threshold: int
    revocation_threshold: int
    administrators: tuple[Administrator, ...]
    current_mk_status: str
    current_mkvp: str
    new_mk_status: str
    new_mkvp: str

    @property
    def imprint_mode(self) -> bool:
        """Signature threshold 0 means imprint mode (§6.2)."""
        return self.signature_threshold == 0

    @property
    def registers(self) -> dict[str, tuple[str, str]]:
        """``current`` and ``new`` master-key registers as (status, VP hex)."""
        return {
            "current": (self.current_mk_status, self.current_mkvp),
            "new": (self.new_mk_status, self.new_mkvp),
        }


@dataclass(frozen=True)
class UnitChange:
    """One unit a command was applied to and the SIGNSERVKEYS keys that signed it."""

    location: str
    signed_by: tuple[str, ...]


@dataclass(frozen=True)
class _PlannedCommand:
    session: CryptoUnitSession
    command: CommandId
    command_input: bytes
    signers: Sequence[CommandSigner]


def _require_units(sessions: Sequence[CryptoUnitSession]) -> None:
    if not sessions:
        raise WorkflowError("no crypto units are selected: select some with cryptounit-add")


def _execute(plans: Sequence[_PlannedCommand]) -> list[UnitChange]:
    """Send the planned commands unit by unit; any failure names the units already changed."""
    changes: list[UnitChange] = []
    for plan in plans:
        location = plan.session.unit.location_text
        applied = [change.location for change in changes]
        try:
            plan.session.run_signed(plan.command, plan.command_input, plan.signers)
        except CryptoUnitRefused as refusal:
            raise CommandRefusedOnUnit(location, refusal, applied) from refusal
        except SignservError as error:
            # E.g. the signing service failing (ClientError): only worth wrapping to say which
            # units had already changed; before any did, the error stands as it is.
            if not applied:
                raise
            raise CommandFailedOnUnit(location, error, applied) from error
        changes.append(
            UnitChange(
                location=location,
                signed_by=tuple(signer.label for signer in plan.signers),
            )
        )
    return changes


def unit_status(session: CryptoUnitSession) -> UnitStatus:
    """Thresholds, administrators and master-key registers of one unit."""
    attributes = session.attributes()
    administrators = tuple(
        Administrator(name=session.admin_certificate(ski).name, ski=ski.hex())
        for ski in session.admin_skis()
    )
    info = session.domain_info()
    return UnitStatus(
        location=session.unit.location_text,
        hsm_id=session.unit.hsm_id,
        unit_type=session.unit.unit_type,
        signature_threshold=attributes.signature_threshold,
        revocation_threshold=attributes.revocation_threshold,
        administrators=administrators,
        current_mk_status=info.current_status,
        current_mkvp=info.current_vp.hex(),
        new_mk_status=info.pending_status,
        new_mkvp=info.pending_vp.hex(),
    )


def add_administrator(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    *,
    key: str,
    name: str,
    signing_keys: Sequence[str] | None = None,
) -> list[UnitChange]:
    """Install SIGNSERVKEYS key ``key`` as administrator ``name`` (≤ 30 bytes) in every unit.

    Units where that key is already an administrator are left out, so a re-run after a failure
    on one unit goes on with the others; if it is installed everywhere, nothing is left to do.
    """
    _require_units(sessions)
    encode_admin_name(name)
    new_admin = key_ring.signer(key)
    chosen: list[tuple[CryptoUnitSession, Sequence[CommandSigner]]] = []
    for session in sessions:
        installed = session.admin_skis()
        if new_admin.ski in installed:
            continue
        if len(installed) >= MAX_ADMINISTRATORS:
            raise WorkflowError(
                f"crypto unit {session.unit.location_text} already has "
                f"{MAX_ADMINISTRATORS} administrators"
            )
        signers = key_ring.installed_signers(
            installed,
            session.attributes().signature_threshold,
            location=session.unit.location_text,
            candidates=signing_keys,
        )
        chosen.append((session, signers))
    if not chosen:
        raise WorkflowError(
            f"signature key {key!r} is already an administrator in every selected crypto unit"
        )
    certificate = new_admin.admin_certificate(name)
    return _execute(
        [
            _PlannedCommand(session, CommandId.ADD_ADMIN, certificate, signers)
            for session, signers in chosen
        ]
    )


def parse_ski(text: str) -> bytes:
    """An administrator SKI given as 64 hexadecimal characters (any case)."""
    try:
        ski = bytes.fromhex(text)
    except ValueError:
        ski = b""
    if len(ski) != 32:
        raise InvalidWorkflowInput(f"an SKI is 64 hexadecimal characters, not {text!r}")
    return ski


def remove_administrator(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    *,
    ski: bytes,
    signing_keys: Sequence[str] | None = None,
) -> list[UnitChange]:
    """Remove the administrator ``ski``, signed by revocation-threshold many administrators.

    Units where it is not installed are left out, so a re-run after a failure on one unit goes
    on with the others; if it is installed nowhere, nothing is left to do.
    """
    _require_units(sessions)
    plans = []
    for session in sessions:
        installed = session.admin_skis()
        if ski not in installed:
            continue
        signers = key_ring.installed_signers(
            installed,
            session.attributes().revocation_threshold,
            location=session.unit.location_text,
            candidates=signing_keys,
        )
        plans.append(_PlannedCommand(session, CommandId.REMOVE_ADMIN, ski, signers))
    if not plans:
        raise WorkflowError(
            f"administrator {ski.hex()} is not installed in any selected crypto unit"
        )
    return _execute(plans)


def _require_threshold(value: int, what: str) -> None:
    if not 1 <= value <= MAX_THRESHOLD:
        raise InvalidWorkflowInput(
            f"the {what} threshold must be an integer between 1 and {MAX_THRESHOLD}"
        )


def _threshold_signers(
    session: CryptoUnitSession,
    key_ring: KeyRing,
    attributes: DomainAttributes,
    new_signature_threshold: int,
    signing_keys: Sequence[str] | None,
) -> Sequence[CommandSigner]:
    """Signers for Set Attributes: the *new* signature threshold when leaving imprint mode (§6.2)."""
    needed = new_signature_threshold if attributes.imprint_mode else attributes.signature_threshold
    return key_ring.installed_signers(
        session.admin_skis(), needed, location=session.unit.location_text, candidates=signing_keys
    )


def set_thresholds(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    *,
    signature: int,
    revocation: int,
    signing_keys: Sequence[str] | None = None,
) -> list[UnitChange]:
    """Set both thresholds (1..8); a unit in imprint mode leaves it."""
    _require_units(sessions)
    _require_threshold(signature, "signature")
    _require_threshold(revocation, "revocation")
    plans = []
    for session in sessions:
        attributes = session.attributes()
        signers = _threshold_signers(session, key_ring, attributes, signature, signing_keys)
        command_input = attributes.with_thresholds(signature, revocation)
        plans.append(_PlannedCommand(session, CommandId.SET_ATTRIBUTES, command_input, signers))
    return _execute(plans)


def exit_imprint_mode(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    *,
    signing_keys: Sequence[str] | None = None,
) -> list[UnitChange]:
    """Leave imprint mode with both thresholds 1, signed by one installed administrator."""
    _require_units(sessions)
    for session in sessions:
        if not session.attributes().imprint_mode:
            raise WorkflowError(f"crypto unit {session.unit.location_text} is not in imprint mode")
    return set_thresholds(sessions, key_ring, signature=1, revocation=1, signing_keys=signing_keys)


def _zeroize_signatures_needed(attributes: DomainAttributes) -> int:
    """0 in imprint mode, 1 with the zeroize-with-one-signature permission, else sig-thr (§7.5)."""
    if attributes.imprint_mode:
        return 0
    if attributes.permissions & Permission.ZEROIZE_ONE_SIGN:
        return 1
    return attributes.signature_threshold


def zeroize(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    *,
    signing_keys: Sequence[str] | None = None,
) -> list[UnitChange]:
    """Return every selected unit to imprint mode: admins removed, registers cleared."""
    _require_units(sessions)
    plans = []
    refused: list[str] = []
    for session in sessions:
        needed = _zeroize_signatures_needed(session.attributes())
        try:
            signers = key_ring.installed_signers(
                session.admin_skis() if needed else [],
                needed,
                location=session.unit.location_text,
                candidates=signing_keys,
            )
        except NotEnoughSignatureKeys:
            refused.append(session.unit.location_text)
            continue
        plans.append(_PlannedCommand(session, CommandId.ZEROIZE_DOMAIN, b"", signers))
    if refused:
        raise NotEnoughSignatureKeys(
            "the administrator signature keys offered do not allow zeroizing these crypto "
            f"units: {', '.join(refused)}"
        )
    return _execute(plans)


def compare_units(statuses: Sequence[UnitStatus]) -> list[str]:
    """The ways the units differ, in words; an empty list means they are configured alike."""
    if len(statuses) < 2:
        return []
    first, others = statuses[0], statuses[1:]
    differences = []
    if any(
        (status.signature_threshold, status.revocation_threshold)
        != (first.signature_threshold, first.revocation_threshold)
        for status in others
    ):
        differences.append("The signature or revocation thresholds differ.")
    if any(
        {admin.ski for admin in status.administrators}
        != {admin.ski for admin in first.administrators}
        for status in others
    ):
        differences.append("The installed administrators differ.")
    for register, (status, vp) in first.registers.items():
        if any(
            other.registers[register][0] != status
            or not same_master_key(bytes.fromhex(other.registers[register][1]), bytes.fromhex(vp))
            for other in others
        ):
            differences.append(f"The {register} master key registers differ.")
    return differences
