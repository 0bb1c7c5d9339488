"""Admin commands that change who administers a domain and how (TKE-REFERENCE §5, §6.1-§6.2)."""

from __future__ import annotations

from signserv.contract import PointNotOnCurve
from signserv.tke.emulator.state import CONTROL_POINT_BYTES, MAX_ADMINS, DomainState
from signserv.tke.errors import MalformedAdminCertificate
from signserv.tke.wire.admin_cert import parse_admin_certificate
from signserv.tke.wire.return_codes import Reason, ReturnCode, refusal

SKI_BYTES = 32


def add_admin(domain: DomainState, certificate: bytes) -> None:
    """Install the administrator a certificate names; its SKI is SHA-256 of the certificate's point.

    The SKI extension must equal that SKI ([EMULATOR POLICY] §5); the self-signature is
    deliberately not checked (§1.7, §2.5).
    """
    try:
        parsed = parse_admin_certificate(certificate)
        parsed.point.verifying_key()
    except (MalformedAdminCertificate, PointNotOnCurve):
        # rc 32 without a reason: the SDK reads "The format or value of the data is incorrect."
        raise refusal(ReturnCode.DATA_INVALID) from None
    if parsed.ski_extension != parsed.ski:
        raise refusal(ReturnCode.DATA_INVALID, Reason.ADMIN_NOT_FOUND)
    if parsed.ski in domain.admins:
        raise refusal(ReturnCode.ADMIN_EXISTS, Reason.ADMIN_EXISTS)
    if len(domain.admins) >= MAX_ADMINS:
        raise refusal(ReturnCode.TOO_MANY_ADMINS, Reason.MAXIMUM_ADMINS)
    domain.admins[parsed.ski] = certificate


def remove_admin(domain: DomainState, ski: bytes) -> None:
    """Remove an administrator; outside imprint mode no threshold may exceed the remaining count."""
    if len(ski) != SKI_BYTES:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT)
    if ski not in domain.admins:
        raise refusal(ReturnCode.DATA_INVALID, Reason.ADMIN_NOT_FOUND)
    remaining = len(domain.admins) - 1
    too_few = remaining < max(domain.signature_threshold, domain.revocation_threshold)
    if not domain.in_imprint_mode and too_few:
        raise refusal(ReturnCode.ATTRIBUTE_REFUSED, Reason.BELOW_THRESHOLD_AFTER_REMOVAL)
    del domain.admins[ski]


def zeroize_domain(domain: DomainState) -> None:
    """Back to imprint mode with no admins and empty registers (§6.1)."""
    domain.zeroize()


def add_control_points(domain: DomainState, mask: bytes) -> None:
    """OR a 16-byte mask into the domain's control points."""
    if len(mask) != CONTROL_POINT_BYTES:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT)
    domain.control_points = bytes(a | b for a, b in zip(domain.control_points, mask, strict=True))
