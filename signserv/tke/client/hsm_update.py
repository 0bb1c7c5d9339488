"""Query, CheckTransition and Update of TKE-REFERENCE §7 against real crypto units.

``check_configuration`` runs every check of §7.3 and returns the SDK's problem texts without
changing anything. ``update_instance`` then plans each unit (:mod:`signserv.tke.client.transition`),
sends the planned commands unit by unit, and loads the master key (§7.4 step 5). Where the
SDK could panic half-way (§9 item 27) a problem is reported before anything changes, and a
failure half-way names the unit and the step; a re-run plans again from the units' state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from signserv.client import ClientError, SigningServiceClient, SignServKey
from signserv.contract import KEY_PROBE_INPUT
from signserv.secret import Secret
from signserv.tke.client.hsm_config import HsmConfig
from signserv.tke.client.master_key_distribution import Progress, initialize_master_key
from signserv.tke.client.master_key_transfer import unit_step
from signserv.tke.client.session import CommandSigner, CryptoUnitSession
from signserv.tke.client.signers import ServiceSigner
from signserv.tke.client.transition import (
    EMPTY,
    RECOVERY,
    BlockAdmin,
    PlannedCommand,
    UnitState,
    input_problems,
    plan_admin_changes,
    state_problems,
)
from signserv.tke.client.workflows import unit_status
from signserv.tke.wire.commands import CommandId


@dataclass(frozen=True)
class ConfiguredAdmin:
    """A block administrator and the signing-service key that acts for it."""

    name: str
    signer: ServiceSigner


@dataclass(frozen=True)
class CheckedConfiguration:
    """The outcome of CheckTransition: problems, or the admins and unit states to plan from."""

    problems: list[str]
    admins: list[ConfiguredAdmin]
    units: list[UnitState]

    @property
    def block(self) -> list[BlockAdmin]:
        """The administrators with their SKIs, in file order."""
        return [BlockAdmin(admin.name, admin.signer.ski) for admin in self.admins]


def configured_admins(
    config: HsmConfig,
    client: SigningServiceClient,
    signservkeys: Sequence[SignServKey],
    token_for: Callable[[SignServKey], Secret[str]],
) -> list[ConfiguredAdmin]:
    """Each admin's token: from the file, else from SIGNSERVKEYS, else asked for by ``token_for``."""
    listed = {entry.key: entry for entry in signservkeys}
    admins = []
    for admin in config.admins:
        entry = listed.get(admin.key, SignServKey(admin.key, None))
        if admin.token is not None:
            entry = SignServKey(admin.key, admin.token)
        admins.append(
            ConfiguredAdmin(admin.name, ServiceSigner(client, admin.key, token_for(entry)))
        )
    return admins


def query_units(sessions: Sequence[CryptoUnitSession]) -> list[UnitState]:
    """§7.2 for every unit, with permissions and mode kept for Set Attributes."""
    return [UnitState(unit_status(session), session.attributes()) for session in sessions]


def _usable_ski(signer: ServiceSigner) -> bytes | None:
    """The key's SKI if the probe signature works, None if the key cannot be used (§7.3 A7)."""
    try:
        signer.sign(KEY_PROBE_INPUT)
    except ClientError:
        return None
    return signer.ski


def check_configuration(
    config: HsmConfig,
    resolve_admins: Callable[[], Sequence[ConfiguredAdmin]],
    sessions: Sequence[CryptoUnitSession],
) -> CheckedConfiguration:
    """§7.3: input and key checks together, then state checks if those found nothing.

    Every key is probed even when a threshold or a name is already wrong, so one run
    reports every input problem, as the SDK's CheckTransition does.
    """
    admins = list(resolve_admins())
    probed = [(admin.name, _usable_ski(admin.signer)) for admin in admins]
    problems = input_problems(config.signature_threshold, config.revocation_threshold, probed)
    if problems:
        return CheckedConfiguration(problems, admins, [])
    units = query_units(sessions)
    checked = CheckedConfiguration([], admins, units)
    problems = state_problems(units, checked.block, config.revocation_threshold)
    return CheckedConfiguration(problems, admins, units)


def _command_input(
    command: PlannedCommand, admins: Sequence[ConfiguredAdmin], certificates: dict[bytes, bytes]
) -> bytes:
    """A planned command's input; an added administrator's certificate is made once (§2.4)."""
    if command.command is not CommandId.ADD_ADMIN:
        return command.command_input
    if command.subject not in certificates:
        admin = next(admin for admin in admins if admin.signer.ski == command.subject)
        certificates[command.subject] = admin.signer.admin_certificate(admin.name)
    return certificates[command.subject]


def _describe(location: str, command: PlannedCommand, signers: Sequence[CommandSigner]) -> str:
    signed = ", ".join(signer.label for signer in signers) or "no signature (imprint mode)"
    return f"crypto unit {location}: {command.description}; signed by: {signed}"


def describe_update(config: HsmConfig, checked: CheckedConfiguration) -> list[str]:
    """What :func:`update_instance` would do, one line per command or master-key transfer."""
    lines: list[str] = []
    for unit in checked.units:
        plan = plan_admin_changes(
            unit, checked.block, config.signature_threshold, config.revocation_threshold
        )
        lines.extend(
            f"crypto unit {unit.status.location}: {command.description}" for command in plan
        )
    statuses = [unit.status for unit in checked.units]
    empty = [status for status in statuses if status.current_mk_status == EMPTY]
    if len(empty) == len(statuses):
        source = next(status for status in statuses if status.unit_type == RECOVERY)
        lines.append(f"crypto unit {source.location}: generate a random master key")
        empty.remove(source)
    lines.extend(f"crypto unit {status.location}: receive the master key" for status in empty)
    return lines


def update_instance(
    config: HsmConfig,
    checked: CheckedConfiguration,
    sessions: Sequence[CryptoUnitSession],
    progress: Progress,
) -> bool:
    """§7.4 for a configuration without problems; True if any unit changed."""
    if checked.problems:
        raise ValueError("update_instance needs a configuration without problems")
    by_ski = {admin.signer.ski: admin.signer for admin in checked.admins}
    certificates: dict[bytes, bytes] = {}
    changed = False
    for session, unit in zip(sessions, checked.units, strict=True):
        plan = plan_admin_changes(
            unit, checked.block, config.signature_threshold, config.revocation_threshold
        )
        for command in plan:
            signers = [by_ski[ski] for ski in command.signers]
            with unit_step(session, command.description):
                session.run_signed(
                    command.command, _command_input(command, checked.admins, certificates), signers
                )
            # Reported once done: "signed by" is a fact only after the unit accepted it.
            progress(_describe(session.unit.location_text, command, signers))
            changed = True
    block_signers = [admin.signer for admin in checked.admins]
    loaded = initialize_master_key(
        sessions, lambda _session, count: block_signers[:count], progress
    )
    return changed or loaded
