"""get_xcp_info request/response and the 80-byte domain-info payload (TKE-REFERENCE §3.7)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire.commands import XCP_INFO_FUNCTION_ID
from signserv.tke.wire.fields import (
    decode_octet_sequence,
    decode_u32,
    encode_octet_sequence,
    encode_u32,
    require_function_id,
)

DOMAIN_INFO_BYTES = 80
VP_BYTES = 32


@dataclass(frozen=True)
class XcpInfoRequest:
    """Ask for module (subtype 1) or domain (subtype 3) information; never signed."""

    domain: int
    subtype: int

    def encode(self) -> bytes:
        """``SEQUENCE { fnid, u32(domain), u32(subtype), 00000000 }``."""
        return encode_octet_sequence(
            encode_u32(XCP_INFO_FUNCTION_ID),
            encode_u32(self.domain),
            encode_u32(self.subtype),
            encode_u32(0),
        )


def decode_xcp_info_request(encoded: bytes) -> XcpInfoRequest:
    """Parse a get_xcp_info request."""
    function, domain, subtype, _ = decode_octet_sequence(encoded, counts=(4,), what="get_xcp_info")
    require_function_id(function, XCP_INFO_FUNCTION_ID, what="get_xcp_info")
    return XcpInfoRequest(
        domain=decode_u32(domain, what="get_xcp_info domain"),
        subtype=decode_u32(subtype, what="get_xcp_info subtype"),
    )


@dataclass(frozen=True)
class XcpInfoResponse:
    """The answer to get_xcp_info: a return code (unchecked by the SDK) and the payload."""

    domain: int
    return_code: int
    payload: bytes

    def encode(self) -> bytes:
        """``SEQUENCE { fnid, u32(domain), u32(rc), payload }``; never OA-signed."""
        return encode_octet_sequence(
            encode_u32(XCP_INFO_FUNCTION_ID),
            encode_u32(self.domain),
            encode_u32(self.return_code),
            self.payload,
        )


def decode_xcp_info_response(encoded: bytes) -> XcpInfoResponse:
    """Parse a get_xcp_info response."""
    function, domain, return_code, payload = decode_octet_sequence(
        encoded, counts=(4,), what="get_xcp_info response"
    )
    require_function_id(function, XCP_INFO_FUNCTION_ID, what="get_xcp_info response")
    return XcpInfoResponse(
        domain=decode_u32(domain, what="get_xcp_info response domain"),
        return_code=decode_u32(return_code, what="get_xcp_info response return code"),
        payload=payload,
    )


class DomainFlag(IntFlag):
    """Bits of the domain-info flags word (§3.7)."""

    ADMINS_PRESENT = 0x01
    CURRENT_WK_PRESENT = 0x02
    PENDING_WK_PRESENT = 0x04
    PENDING_WK_COMMITTED = 0x08
    LEFT_IMPRINT_MODE = 0x10
    ENFORCES_IMPRINT = 0x80000000


@dataclass(frozen=True)
class DomainInfo:
    """The domain-info payload: register verification patterns, flags and mode."""

    domain: int
    current_vp: bytes = bytes(VP_BYTES)
    pending_vp: bytes = bytes(VP_BYTES)
    flags: int = 0
    mode: int = 0

    def encode(self) -> bytes:
        """Domain, current VP, pending VP, flags (u32), mode (8 bytes): 80 bytes (§3.7)."""
        if len(self.current_vp) != VP_BYTES or len(self.pending_vp) != VP_BYTES:
            raise ValueError("verification patterns are 32 bytes")
        return (
            encode_u32(self.domain)
            + self.current_vp
            + self.pending_vp
            + encode_u32(self.flags)
            + self.mode.to_bytes(8, "big")
        )

    @property
    def current_status(self) -> str:
        """``Valid`` or ``Empty``, as the SDK reads byte 71 (§3.7, §6.4)."""
        return "Valid" if self.flags & DomainFlag.CURRENT_WK_PRESENT else "Empty"

    @property
    def pending_status(self) -> str:
        """``Empty``, ``Full Uncommitted`` or ``Full Committed``."""
        if not self.flags & DomainFlag.PENDING_WK_PRESENT:
            return "Empty"
        if self.flags & DomainFlag.PENDING_WK_COMMITTED:
            return "Full Committed"
        return "Full Uncommitted"


def decode_domain_info(payload: bytes) -> DomainInfo:
    """Parse a domain-info payload of at least 80 bytes."""
    if len(payload) < DOMAIN_INFO_BYTES:
        raise MalformedTKEMessage(f"domain info is {len(payload)} bytes, at least 80 expected")
    return DomainInfo(
        domain=int.from_bytes(payload[0:4], "big"),
        current_vp=payload[4:36],
        pending_vp=payload[36:68],
        flags=int.from_bytes(payload[68:72], "big"),
        mode=int.from_bytes(payload[72:80], "big"),
    )
