"""Answers to the unsigned queries: admin commands with the query bit and get_xcp_info (TKE-REFERENCE §5)."""

from __future__ import annotations

from signserv.tke.emulator.attribute_rules import encode_current_attributes
from signserv.tke.emulator.state import CryptoUnitState, DomainState
from signserv.tke.wire.commands import CommandId, XcpInfoSubtype
from signserv.tke.wire.fields import encode_u32
from signserv.tke.wire.return_codes import Reason, ReturnCode, refusal
from signserv.tke.wire.verification_pattern import VP_BYTES, calc_vp
from signserv.tke.wire.xcp_info import DomainFlag, DomainInfo

MODULE_INFO_BYTES = 196
_MODULE_SERIAL_OFFSET = 108


def _admins(domain: DomainState, command_input: bytes) -> bytes:
    """Empty input lists the SKIs; a 32-byte SKI returns that admin's certificate."""
    if not command_input:
        return b"".join(domain.admins)
    if len(command_input) != 32:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT)
    certificate = domain.admins.get(command_input)
    if certificate is None:
        raise refusal(ReturnCode.DATA_INVALID, Reason.ADMIN_NOT_FOUND)
    return certificate


def _device_certificate(unit: CryptoUnitState, command_input: bytes) -> bytes:
    """Empty input counts the OA certificates; u32(index) returns one, 96/60 past the chain (§3.9)."""
    if not command_input:
        return encode_u32(len(unit.oa_certificates))
    if len(command_input) != 4:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT)
    index = int.from_bytes(command_input, "big")
    if index >= len(unit.oa_certificates):
        raise refusal(ReturnCode.KEY_NOT_FOUND, Reason.CERTIFICATE_NOT_FOUND)
    return unit.oa_certificates[index]


def answer_admin_query(unit: CryptoUnitState, command: CommandId, command_input: bytes) -> bytes:
    """The output of a query command."""
    if command is CommandId.QUERY_DOMAIN_ADMINS:
        return _admins(unit.domain, command_input)
    if command is CommandId.QUERY_DEVICE_CERT:
        return _device_certificate(unit, command_input)
    if command is CommandId.QUERY_DOMAIN_ATTRIBUTES:
        return encode_current_attributes(unit.domain)
    if command is CommandId.QUERY_CONTROL_POINTS:
        return unit.domain.control_points
    raise refusal(ReturnCode.BAD_ARGUMENTS)


def _vp_or_zero(key: bytes | None) -> bytes:
    return bytes(VP_BYTES) if key is None else calc_vp(key)


def domain_info(domain: DomainState) -> DomainInfo:
    """The domain-info payload: register VPs and the flags of §3.7."""
    flags = 0
    if domain.admins:
        flags |= DomainFlag.ADMINS_PRESENT
    if domain.current_wk is not None:
        flags |= DomainFlag.CURRENT_WK_PRESENT
    if domain.pending_wk is not None:
        flags |= DomainFlag.PENDING_WK_PRESENT
        if domain.pending_committed:
            flags |= DomainFlag.PENDING_WK_COMMITTED
    if not domain.in_imprint_mode:
        flags |= DomainFlag.LEFT_IMPRINT_MODE
    return DomainInfo(
        domain=domain.index,
        current_vp=_vp_or_zero(domain.current_wk),
        pending_vp=_vp_or_zero(domain.pending_wk),
        flags=flags,
        mode=domain.mode,
    )


def module_info(unit: CryptoUnitState) -> bytes:
    """A 196-byte module-info payload whose serial field (bytes 108..124) holds the module id."""
    info = bytearray(MODULE_INFO_BYTES)
    info[_MODULE_SERIAL_OFFSET : _MODULE_SERIAL_OFFSET + 16] = unit.module_id
    return bytes(info)


def answer_xcp_info(unit: CryptoUnitState, subtype: int) -> bytes:
    """The get_xcp_info payload for module (1) or domain (3) information."""
    if subtype == XcpInfoSubtype.DOMAIN:
        return domain_info(unit.domain).encode()
    if subtype == XcpInfoSubtype.MODULE:
        return module_info(unit)
    raise refusal(ReturnCode.BAD_ARGUMENTS)
