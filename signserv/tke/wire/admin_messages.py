"""xcpAdminBlk, xcpAdminReq, xcpAdminRsp, xcpAdminRspBlk: the m_admin payloads (TKE-REFERENCE §3.7).

Every field is an OCTET STRING and empty fields are still written (``04 00``). A request keeps
its block as the exact DER bytes received, because those are what the signers signed (§4.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire.commands import ADMIN_FUNCTION_ID
from signserv.tke.wire.fields import (
    decode_octet_sequence,
    decode_u32,
    encode_octet_sequence,
    encode_u32,
    require_function_id,
)

DOMAIN_ID_BYTES = 8
MODULE_ID_BYTES = 16
MODULE_SERIAL_BYTES = 8
"""A moduleId starts with the module's 8-character ASCII serial; the rest is its instance."""


def domain_id(domain: int, instance_id: bytes) -> bytes:
    """The 8-byte domainId: ``u32(domain index) || instance id(4)``."""
    if len(instance_id) != 4:
        raise ValueError("a domain instance id is 4 bytes")
    return encode_u32(domain) + instance_id


@dataclass(frozen=True)
class AdminBlock:
    """xcpAdminBlk: the command and its context; its DER is what administrators sign."""

    command: int
    domain_id: bytes
    module_id: bytes = b""
    counter: bytes = b""
    command_input: bytes = b""

    def encode(self) -> bytes:
        """The DER SEQUENCE of five OCTET STRINGs."""
        return encode_octet_sequence(
            encode_u32(self.command),
            self.domain_id,
            self.module_id,
            self.counter,
            self.command_input,
        )

    @property
    def domain(self) -> int:
        """The domain index held in the first four bytes of domainId."""
        return int.from_bytes(self.domain_id[0:4], "big")


def decode_admin_block(encoded: bytes) -> AdminBlock:
    """Parse an xcpAdminBlk."""
    command, domain, module_id, counter, command_input = decode_octet_sequence(
        encoded, counts=(5,), what="xcpAdminBlk"
    )
    if len(domain) != DOMAIN_ID_BYTES:
        raise MalformedTKEMessage(f"xcpAdminBlk: domainId is {len(domain)} bytes, not 8")
    return AdminBlock(
        command=decode_u32(command, what="xcpAdminBlk cmdId"),
        domain_id=domain,
        module_id=module_id,
        counter=counter,
        command_input=command_input,
    )


@dataclass(frozen=True)
class AdminRequest:
    """xcpAdminReq: the block's DER as signed, and the concatenated SignerInfos over it."""

    domain: int
    block: bytes
    signer_infos: bytes = b""

    def encode(self) -> bytes:
        """``SEQUENCE { fnid, u32(domain), DER(block), signerInfos }``."""
        return encode_octet_sequence(
            encode_u32(ADMIN_FUNCTION_ID), encode_u32(self.domain), self.block, self.signer_infos
        )


def decode_admin_request(encoded: bytes) -> AdminRequest:
    """Parse an xcpAdminReq; the block stays as the bytes received."""
    function, domain, block, signer_infos = decode_octet_sequence(
        encoded, counts=(4,), what="xcpAdminReq"
    )
    require_function_id(function, ADMIN_FUNCTION_ID, what="xcpAdminReq")
    return AdminRequest(
        domain=decode_u32(domain, what="xcpAdminReq domain"), block=block, signer_infos=signer_infos
    )


@dataclass(frozen=True)
class AdminResponseBlock:
    """xcpAdminRspBlk: the echoed command, the unit's identity and counter, the outcome."""

    command: int
    domain_id: bytes
    module_id: bytes
    counter: bytes
    return_code: int
    output: bytes = b""

    def encode(self) -> bytes:
        """The DER SEQUENCE of six OCTET STRINGs; its DER is what the OA key signs (§3.8)."""
        return encode_octet_sequence(
            encode_u32(self.command),
            self.domain_id,
            self.module_id,
            self.counter,
            encode_u32(self.return_code),
            self.output,
        )

    @property
    def reason(self) -> int | None:
        """The reason code of a refused command: u32 of output[0:4] when present (§3.7)."""
        if self.return_code == 0 or len(self.output) < 4:
            return None
        return int.from_bytes(self.output[0:4], "big")


def decode_admin_response_block(encoded: bytes) -> AdminResponseBlock:
    """Parse an xcpAdminRspBlk."""
    command, domain, module_id, counter, return_code, output = decode_octet_sequence(
        encoded, counts=(6,), what="xcpAdminRspBlk"
    )
    return AdminResponseBlock(
        command=decode_u32(command, what="xcpAdminRspBlk cmdId"),
        domain_id=domain,
        module_id=module_id,
        counter=counter,
        return_code=decode_u32(return_code, what="xcpAdminRspBlk return code"),
        output=output,
    )


@dataclass(frozen=True)
class AdminResponse:
    """xcpAdminRsp: the normal five-element form, or the three-element early error (no block)."""

    domain: int
    return_value: int
    block: bytes | None = None
    oa_signer_infos: bytes = b""

    def encode(self) -> bytes:
        """Five elements when a block is present, else the three-element error form."""
        head = (
            encode_u32(ADMIN_FUNCTION_ID),
            encode_u32(self.domain),
            encode_u32(self.return_value),
        )
        if self.block is None:
            return encode_octet_sequence(*head)
        return encode_octet_sequence(*head, self.block, self.oa_signer_infos)


def decode_admin_response(encoded: bytes) -> AdminResponse:
    """Parse an xcpAdminRsp of either form."""
    fields = decode_octet_sequence(encoded, counts=(3, 5), what="xcpAdminRsp")
    require_function_id(fields[0], ADMIN_FUNCTION_ID, what="xcpAdminRsp")
    domain = decode_u32(fields[1], what="xcpAdminRsp domain")
    return_value = decode_u32(fields[2], what="xcpAdminRsp return value")
    if len(fields) == 3:
        return AdminResponse(domain=domain, return_value=return_value)
    return AdminResponse(
        domain=domain, return_value=return_value, block=fields[3], oa_signer_infos=fields[4]
    )
