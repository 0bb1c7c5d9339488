"""One admin request through the checks of TKE-REFERENCE §4.6, then its command.

A signed command runs on a copy of the domain; the copy replaces the domain only when the
command succeeds, so a refusal leaves the unit exactly as it was.
"""

from __future__ import annotations

import copy
import dataclasses

from signserv.tke.emulator.queries import answer_admin_query
from signserv.tke.emulator.responses import refusal_output, signed_admin_response
from signserv.tke.emulator.signatures import require_quorum, verify_signer_infos
from signserv.tke.emulator.signed_commands import SIGNED_COMMANDS
from signserv.tke.emulator.state import CryptoUnitState
from signserv.tke.errors import CryptoUnitRefused, MalformedTKEMessage
from signserv.tke.wire.admin_messages import (
    AdminBlock,
    AdminRequest,
    AdminResponse,
    decode_admin_block,
)
from signserv.tke.wire.commands import CommandId
from signserv.tke.wire.counter import COUNTER_BYTES
from signserv.tke.wire.return_codes import ReturnCode, refusal

_DEVICE_CERT_DOMAIN_ID = bytes(8)
_KNOWN_COMMANDS = frozenset(CommandId)


def _answer_query(unit: CryptoUnitState, command: CommandId, block: AdminBlock) -> bytes:
    """§4.6 step 1 for queries: domain index must match (device-cert reads may send all zero)."""
    addressed = block.domain == unit.domain.index or (
        command is CommandId.QUERY_DEVICE_CERT and block.domain_id == _DEVICE_CERT_DOMAIN_ID
    )
    if not addressed:
        raise refusal(ReturnCode.INVALID_DOMAIN)
    return answer_admin_query(unit, command, block.command_input)


def _execute_signed(
    unit: CryptoUnitState, command: CommandId, block: AdminBlock, request: AdminRequest
) -> bytes:
    """Steps 1-5 of §4.6 for a signed command; on success the unit holds the new domain."""
    if (block.domain_id, block.module_id) != (unit.domain_id, unit.module_id):
        raise refusal(ReturnCode.INVALID_DOMAIN)
    rule = SIGNED_COMMANDS[command]
    signers = verify_signer_infos(request.block, request.signer_infos, unit.domain.admins)
    require_quorum(signers, rule.required_signatures(unit.domain, block.command_input))
    counter_is_newer = len(block.counter) == COUNTER_BYTES and int.from_bytes(
        block.counter, "big"
    ) > int.from_bytes(unit.domain.counter, "big")
    if not counter_is_newer:
        raise refusal(ReturnCode.INVALID_TRANSACTION_COUNTER)
    working = dataclasses.replace(unit, domain=copy.deepcopy(unit.domain))
    output = rule.execute(working, block)
    working.domain.counter = block.counter
    unit.domain = working.domain
    return output


def _run_command(unit: CryptoUnitState, block: AdminBlock, request: AdminRequest) -> bytes:
    if block.command not in _KNOWN_COMMANDS:
        raise refusal(ReturnCode.BAD_ARGUMENTS)
    command = CommandId(block.command)
    if command.is_query:
        return _answer_query(unit, command, block)
    if command not in SIGNED_COMMANDS:
        raise refusal(ReturnCode.BAD_ARGUMENTS)
    return _execute_signed(unit, command, block, request)


def answer_admin_request(unit: CryptoUnitState, request: AdminRequest) -> AdminResponse:
    """The response to an xcpAdminReq; command refusals go in the signed inner block (§3.7)."""
    try:
        block = decode_admin_block(request.block)
    except MalformedTKEMessage:
        return AdminResponse(domain=request.domain, return_value=ReturnCode.BAD_ARGUMENTS)
    if request.domain != unit.domain.index:
        return AdminResponse(domain=request.domain, return_value=ReturnCode.INVALID_DOMAIN)
    try:
        output = _run_command(unit, block, request)
    except CryptoUnitRefused as refused:
        return signed_admin_response(
            unit, block.command, refused.return_code, refusal_output(refused)
        )
    return signed_admin_response(unit, block.command, ReturnCode.OK, output)
