"""Signed admin responses: xcpAdminRspBlk signed by the module's epoch OA key (TKE-REFERENCE §3.7-§3.8)."""

from __future__ import annotations

from signserv.contract import encode_signature
from signserv.tke.emulator.state import CryptoUnitState
from signserv.tke.errors import CryptoUnitRefused
from signserv.tke.wire.admin_messages import AdminResponse, AdminResponseBlock
from signserv.tke.wire.fields import encode_u32
from signserv.tke.wire.oa_certificate import parse_oa2_certificate
from signserv.tke.wire.raw_key_material import sign_sha512
from signserv.tke.wire.signer_info import SignerInfo


def refusal_output(refused: CryptoUnitRefused) -> bytes:
    """The output field of a refused command: u32(reason), or nothing without a reason (§3.7)."""
    return b"" if refused.reason is None else encode_u32(refused.reason)


def signed_admin_response(
    unit: CryptoUnitState, command: int, return_code: int, output: bytes
) -> AdminResponse:
    """The five-element response, its block carrying the unit's identity and current counter."""
    block = AdminResponseBlock(
        command=command,
        domain_id=unit.domain_id,
        module_id=unit.module_id,
        counter=unit.domain.counter,
        return_code=return_code,
        output=output,
    ).encode()
    epoch_ski = parse_oa2_certificate(unit.oa_certificates[0]).subject_id
    signature = encode_signature(*sign_sha512(unit.epoch_key, block))
    return AdminResponse(
        domain=unit.domain.index,
        return_value=0,
        block=block,
        oa_signer_infos=SignerInfo(ski=epoch_ski, signature=signature).encode(),
    )
