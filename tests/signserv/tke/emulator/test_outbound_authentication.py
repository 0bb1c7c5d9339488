"""OA signatures on responses and the OA2 certificate chain (TKE-REFERENCE §3.8-§3.9)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from signserv.contract import PublicPoint, decode_signature
from signserv.tke.emulator import CryptoUnitEmulator
from signserv.tke.wire import (
    AdminBlock,
    AdminRequest,
    CommandId,
    decode_admin_response,
    domain_id,
    parse_signer_infos,
)
from signserv.tke.wire.oa_certificate import parse_oa2_certificate

if TYPE_CHECKING:
    from conftest import UnitDriver


def verify(point: PublicPoint, signature: tuple[int, int], data: bytes) -> None:
    """ECDSA P-521/SHA-512, raising InvalidSignature."""
    key = ec.EllipticCurvePublicNumbers(point.x, point.y, ec.SECP521R1()).public_key()
    key.verify(encode_dss_signature(*signature), data, ec.ECDSA(hashes.SHA512()))


def device_certificate(unit: UnitDriver, index: int) -> bytes:
    """Read OA certificate ``index``."""
    return unit.query(CommandId.QUERY_DEVICE_CERT, index.to_bytes(4, "big")).output


def test_chain_verifies_up_to_the_emulator_root(
    emulator: CryptoUnitEmulator, unit: UnitDriver
) -> None:
    """Cert 0 verifies with cert 1's key; cert 1's signer is the trust anchor (§3.9)."""
    epoch = parse_oa2_certificate(device_certificate(unit, 0))
    module = parse_oa2_certificate(device_certificate(unit, 1))
    assert epoch.signer_id == module.subject_id != epoch.subject_id
    verify(module.point, epoch.signature, epoch.body)
    root_ski, root_point = emulator.oa_trust_anchor()
    assert module.signer_id == root_ski
    verify(root_point, module.signature, module.body)


def test_response_is_signed_by_the_epoch_key(unit: UnitDriver) -> None:
    """The ECDSA SignerInfo of a response verifies over the DER of xcpAdminRspBlk (§3.8)."""
    epoch = parse_oa2_certificate(device_certificate(unit, 0))
    block = AdminBlock(CommandId.QUERY_DOMAIN_ATTRIBUTES, domain_id(15, bytes(4))).encode()
    response = decode_admin_response(unit.exchange(AdminRequest(15, block).encode()))
    assert response.block is not None
    (signer_info,) = parse_signer_infos(response.oa_signer_infos)
    assert signer_info.ski == epoch.subject_id
    verify(epoch.point, decode_signature(signer_info.signature), response.block)
    with pytest.raises(InvalidSignature):
        verify(epoch.point, decode_signature(signer_info.signature), response.block + b"\x00")
