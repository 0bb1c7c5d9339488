"""The signed admin commands: how many signatures each needs and what it does (TKE-REFERENCE §5, §6.2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from signserv.tke.emulator import admin_commands, master_key_commands
from signserv.tke.emulator.attribute_rules import requested_attributes, set_domain_attributes
from signserv.tke.emulator.state import CryptoUnitState, DomainState
from signserv.tke.wire.admin_messages import AdminBlock
from signserv.tke.wire.commands import CommandId, Permission


@dataclass(frozen=True)
class SignedCommand:
    """A command's quorum rule and its effect; the effect returns the command's output."""

    required_signatures: Callable[[DomainState, bytes], int]
    execute: Callable[[CryptoUnitState, AdminBlock], bytes]


def _signature_threshold(domain: DomainState, _: bytes) -> int:
    return domain.signature_threshold


def _revocation_threshold(domain: DomainState, _: bytes) -> int:
    return 0 if domain.in_imprint_mode else domain.revocation_threshold


def _no_signature(_domain: DomainState, _input: bytes) -> int:
    return 0


def _one_signature(domain: DomainState, _: bytes) -> int:
    return 0 if domain.in_imprint_mode else 1


def _set_attributes_quorum(domain: DomainState, command_input: bytes) -> int:
    """Leaving imprint mode needs the *new* signature threshold's worth of signers (§6.2)."""
    if domain.in_imprint_mode:
        return requested_attributes(domain, command_input).signature_threshold
    return domain.signature_threshold


def _one_if_permitted(permission: Permission) -> Callable[[DomainState, bytes], int]:
    def required(domain: DomainState, _: bytes) -> int:
        if domain.in_imprint_mode:
            return 0
        return 1 if domain.permissions & permission else domain.signature_threshold

    return required


def _no_output(
    effect: Callable[[DomainState, bytes], None],
) -> Callable[[CryptoUnitState, AdminBlock], bytes]:
    def execute(unit: CryptoUnitState, block: AdminBlock) -> bytes:
        effect(unit.domain, block.command_input)
        return b""

    return execute


def _zeroize(domain: DomainState, _: bytes) -> None:
    admin_commands.zeroize_domain(domain)


SIGNED_COMMANDS: dict[CommandId, SignedCommand] = {
    CommandId.ADD_ADMIN: SignedCommand(_signature_threshold, _no_output(admin_commands.add_admin)),
    CommandId.REMOVE_ADMIN: SignedCommand(
        _revocation_threshold, _no_output(admin_commands.remove_admin)
    ),
    CommandId.SET_ATTRIBUTES: SignedCommand(
        _set_attributes_quorum, _no_output(set_domain_attributes)
    ),
    CommandId.ZEROIZE_DOMAIN: SignedCommand(
        _one_if_permitted(Permission.ZEROIZE_ONE_SIGN), _no_output(_zeroize)
    ),
    CommandId.ADD_CONTROL_POINTS: SignedCommand(
        _one_if_permitted(Permission.CONTROL_POINTS_ONE_SIGN),
        _no_output(admin_commands.add_control_points),
    ),
    CommandId.GENERATE_IMPORTER_KEY: SignedCommand(
        _one_signature, master_key_commands.generate_importer_key
    ),
    CommandId.GENERATE_RANDOM_WK: SignedCommand(
        _one_signature, master_key_commands.generate_random_wk
    ),
    CommandId.EXPORT_WK: SignedCommand(_signature_threshold, master_key_commands.export_current_wk),
    CommandId.EXPORT_PENDING_WK: SignedCommand(
        _signature_threshold, master_key_commands.export_pending_wk
    ),
    # §4.5: the outer Import WK request is unsigned; each inner part carries its own signature.
    CommandId.IMPORT_WK: SignedCommand(_no_signature, master_key_commands.import_wk),
    CommandId.COMMIT_WK: SignedCommand(_signature_threshold, master_key_commands.commit_pending_wk),
    CommandId.FINALIZE_WK: SignedCommand(_one_signature, master_key_commands.finalize_pending_wk),
    CommandId.CLEAR_CURRENT_WK: SignedCommand(
        _signature_threshold, master_key_commands.clear_current_wk
    ),
    CommandId.CLEAR_PENDING_WK: SignedCommand(_one_signature, master_key_commands.clear_pending_wk),
}
