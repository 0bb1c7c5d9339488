"""Master-key (wrapping-key) register commands of a domain (TKE-REFERENCE §5, §6.4-§6.5).

[EMULATOR POLICY] every command here is refused with 179 in imprint mode (§6.2).
"""

from __future__ import annotations

import secrets

from signserv import der
from signserv.tke.emulator.signatures import require_quorum, verify_signer_infos
from signserv.tke.emulator.state import CryptoUnitState, DomainState
from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire.admin_messages import AdminBlock, decode_admin_block, decode_admin_request
from signserv.tke.wire.commands import CommandId, Permission
from signserv.tke.wire.fields import decode_u32
from signserv.tke.wire.key_transport import KeyUnwrapFailed, unwrap_key, wrap_key_for
from signserv.tke.wire.kph import parse_kph_certificate
from signserv.tke.wire.parameter_map import (
    ParameterEntry,
    ParameterTag,
    decode_parameter_map,
    encode_parameter_map,
    find_parameter,
)
from signserv.tke.wire.raw_key_material import generate_private_scalar, public_point_of
from signserv.tke.wire.recipient_info import parse_recipient_info
from signserv.tke.wire.return_codes import Reason, ReturnCode, refusal
from signserv.tke.wire.spki import encode_p521_spki
from signserv.tke.wire.verification_pattern import VP_BYTES, calc_vp

WK_BYTES = 32
P521_IMPORTER_KEY_TYPE = 3


def _require_left_imprint_mode(domain: DomainState) -> None:
    if domain.in_imprint_mode:
        raise refusal(ReturnCode.NOT_ALLOWED_IN_IMPRINT_MODE)


def _require_permission(domain: DomainState, permission: Permission, reason: Reason) -> None:
    if not domain.permissions & permission:
        raise refusal(ReturnCode.PERMISSION_DENIED, reason)


def generate_importer_key(unit: CryptoUnitState, block: AdminBlock) -> bytes:
    """(Re)create the domain's P-521 importer key; output its SPKI. RSA importers are not emulated."""
    domain = unit.domain
    _require_left_imprint_mode(domain)
    try:
        key_type = decode_u32(block.command_input, what="importer key type")
    except MalformedTKEMessage:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT) from None
    if key_type != P521_IMPORTER_KEY_TYPE:
        raise refusal(ReturnCode.BAD_ARGUMENTS)
    domain.importer_key = generate_private_scalar()
    return encode_p521_spki(public_point_of(domain.importer_key))


def generate_random_wk(unit: CryptoUnitState, block: AdminBlock) -> bytes:
    """A random key into the current register if empty, else into an empty pending one (§6.4)."""
    domain = unit.domain
    _require_left_imprint_mode(domain)
    _require_permission(domain, Permission.RANDOM_WK, Reason.RANDOM_WK_NOT_PERMITTED)
    key = secrets.token_bytes(WK_BYTES)
    if domain.current_wk is None:
        domain.current_wk = key
    elif domain.pending_wk is None:
        domain.pending_wk, domain.pending_committed = key, False
    else:
        raise refusal(ReturnCode.BAD_ARGUMENTS)
    return calc_vp(key)


def _export(domain: DomainState, key: bytes | None, command_input: bytes) -> bytes:
    """Wrap ``key`` for the KPH certificate in the parameter map; answer with entry 0019/0."""
    _require_left_imprint_mode(domain)
    _require_permission(domain, Permission.WK_EXPORT, Reason.WK_EXPORT_NOT_PERMITTED)
    if key is None:
        raise refusal(ReturnCode.KEY_MISSING)
    try:
        parameters = decode_parameter_map(command_input)
        kph_certificate = find_parameter(parameters, ParameterTag.KPH_CERTIFICATE, 0)
    except MalformedTKEMessage:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT) from None
    try:
        importer = parse_kph_certificate(kph_certificate)
        recipient_info = wrap_key_for(importer, key)
    except ValueError:
        raise refusal(ReturnCode.INVALID_DOMAIN, Reason.INVALID_KPH_CERTIFICATE) from None
    entry = ParameterEntry(ParameterTag.ENCRYPTED_KEY_PART, 0, recipient_info.encode())
    return encode_parameter_map([entry])


def export_current_wk(unit: CryptoUnitState, block: AdminBlock) -> bytes:
    """Export the current register for another unit's importer key (needs permission 0x02)."""
    return _export(unit.domain, unit.domain.current_wk, block.command_input)


def export_pending_wk(unit: CryptoUnitState, block: AdminBlock) -> bytes:
    """Export the pending register for another unit's importer key."""
    return _export(unit.domain, unit.domain.pending_wk, block.command_input)


def _import_part(unit: CryptoUnitState, outer: AdminBlock, inner_request: bytes) -> bytes:
    """Verify one signed inner request of Import WK (§4.5) and unwrap its key part."""
    try:
        request = decode_admin_request(inner_request)
        inner = decode_admin_block(request.block)
        recipient_info = parse_recipient_info(inner.command_input)
    except MalformedTKEMessage:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT) from None
    same_target = (inner.command, inner.domain_id, inner.module_id) == (
        CommandId.IMPORT_WK,
        unit.domain_id,
        unit.module_id,
    )
    if not same_target:
        raise refusal(ReturnCode.INVALID_DOMAIN)
    if inner.counter != outer.counter:
        raise refusal(ReturnCode.INVALID_TRANSACTION_COUNTER)
    signers = verify_signer_infos(request.block, request.signer_infos, unit.domain.admins)
    require_quorum(signers, 1)
    if unit.domain.importer_key is None:
        raise refusal(ReturnCode.KEY_MISSING)
    try:
        part = unwrap_key(unit.domain.importer_key, recipient_info)
    except KeyUnwrapFailed:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT) from None
    if len(part) != WK_BYTES:
        # A well-wrapped key of another length (e.g. AES-192) is no master-key part.
        raise refusal(ReturnCode.BAD_COMMAND_INPUT)
    return part


def import_wk(unit: CryptoUnitState, block: AdminBlock) -> bytes:
    """Combine the signed key parts (XOR) into the pending register, Full Uncommitted (§4.5, §6.4)."""
    domain = unit.domain
    _require_left_imprint_mode(domain)
    _require_permission(domain, Permission.WK_IMPORT, Reason.WK_IMPORT_NOT_PERMITTED)
    try:
        inner_requests = der.split_elements(block.command_input)
    except der.DERError:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT) from None
    if not inner_requests:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT)
    if len(inner_requests) == 1:
        _require_permission(domain, Permission.WK_ONE_PART, Reason.ONE_PART_IMPORT_NOT_PERMITTED)
    key = bytes(WK_BYTES)
    for inner in inner_requests:
        part = _import_part(unit, block, der.encode_tlv(inner.tag, inner.content))
        key = bytes(a ^ b for a, b in zip(key, part, strict=True))
    domain.pending_wk, domain.pending_committed = key, False
    return b""


def _require_pending_vp(domain: DomainState, supplied_vp: bytes) -> None:
    if len(supplied_vp) != VP_BYTES:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT)
    if domain.pending_wk is None:
        raise refusal(ReturnCode.KEY_MISSING)
    if calc_vp(domain.pending_wk) != supplied_vp:
        raise refusal(
            ReturnCode.VERIFICATION_PATTERN_MISMATCH, Reason.VERIFICATION_PATTERN_MISMATCH
        )


def commit_pending_wk(unit: CryptoUnitState, block: AdminBlock) -> bytes:
    """Full Uncommitted → Full Committed, if the supplied VP names the pending key."""
    _require_left_imprint_mode(unit.domain)
    _require_pending_vp(unit.domain, block.command_input)
    unit.domain.pending_committed = True
    return b""


def finalize_pending_wk(unit: CryptoUnitState, block: AdminBlock) -> bytes:
    """Move a committed pending key into the current register; pending becomes Empty."""
    domain = unit.domain
    _require_left_imprint_mode(domain)
    _require_pending_vp(domain, block.command_input)
    if not domain.pending_committed:
        raise refusal(ReturnCode.BAD_ARGUMENTS)
    domain.current_wk, domain.pending_wk, domain.pending_committed = domain.pending_wk, None, False
    return b""


def clear_current_wk(unit: CryptoUnitState, block: AdminBlock) -> bytes:
    """Empty the current register."""
    _require_left_imprint_mode(unit.domain)
    unit.domain.current_wk = None
    return b""


def clear_pending_wk(unit: CryptoUnitState, block: AdminBlock) -> bytes:
    """Empty the pending register."""
    _require_left_imprint_mode(unit.domain)
    unit.domain.pending_wk, unit.domain.pending_committed = None, False
    return b""
