"""Verification of the SignerInfos on an admin command (TKE-REFERENCE §4.6 steps 2-4)."""

from __future__ import annotations

from collections.abc import Mapping

from signserv.contract import (
    MalformedSignature,
    PointNotOnCurve,
    SignatureMismatch,
    decode_signature,
)
from signserv.tke.errors import MalformedSignerInfo
from signserv.tke.wire import oids
from signserv.tke.wire.admin_cert import parse_admin_certificate
from signserv.tke.wire.return_codes import ReturnCode, refusal
from signserv.tke.wire.signer_info import parse_signer_infos


def verify_signer_infos(
    block: bytes, signer_infos: bytes, admins: Mapping[bytes, bytes]
) -> frozenset[bytes]:
    """The distinct installed-admin SKIs whose signatures over ``block`` verify.

    Every SignerInfo present must be good, even when none is required (imprint mode):
    malformed → 193, signer not installed → 257, signature wrong → 192. Only ECDSA P-521 with
    SHA-512 is accepted; legacy RSA key-file signers are refused as malformed.
    """
    try:
        parsed = parse_signer_infos(signer_infos)
    except MalformedSignerInfo:
        raise refusal(ReturnCode.SIGNATURE_MALFORMED) from None
    signers = set()
    for signer_info in parsed:
        if (signer_info.digest_algorithm, signer_info.signature_algorithm) != (
            oids.SHA512,
            oids.ECDSA_WITH_SHA512,
        ):
            raise refusal(ReturnCode.SIGNATURE_MALFORMED)
        try:
            signature = decode_signature(signer_info.signature)
        except MalformedSignature:
            raise refusal(ReturnCode.SIGNATURE_MALFORMED) from None
        certificate = admins.get(signer_info.ski)
        if certificate is None:
            raise refusal(ReturnCode.SIGNER_NOT_ADMIN)
        try:
            parse_admin_certificate(certificate).point.verify_sha512(signature, block)
        except (PointNotOnCurve, SignatureMismatch):
            raise refusal(ReturnCode.SIGNATURE_INVALID) from None
        signers.add(signer_info.ski)
    return frozenset(signers)


def require_quorum(signers: frozenset[bytes], required: int) -> None:
    """Refuse with 208 when fewer distinct valid signers than ``required`` signed."""
    if len(signers) < required:
        raise refusal(ReturnCode.NOT_ENOUGH_SIGNATURES)
