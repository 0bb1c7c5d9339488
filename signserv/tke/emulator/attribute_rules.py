"""Set Domain Attributes: thresholds, permissions and their change-control rules (TKE-REFERENCE §6.2-§6.3)."""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

from signserv.tke.emulator.state import DomainState
from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire.attributes import (
    DomainAttributes,
    decode_attribute_pairs,
    encode_attribute_pairs,
)
from signserv.tke.wire.commands import GUARDED_BY_CHANGE_BIT, AttributeId, Permission
from signserv.tke.wire.return_codes import Reason, ReturnCode, refusal

_FIELD_BY_ID = {
    AttributeId.SIGNATURE_THRESHOLD: "signature_threshold",
    AttributeId.REVOCATION_THRESHOLD: "revocation_threshold",
    AttributeId.PERMISSIONS: "permissions",
    AttributeId.MODE: "mode",
    AttributeId.STANDARDS: "standards",
}


def current_attributes(domain: DomainState) -> DomainAttributes:
    """The domain's attributes as they are now."""
    return DomainAttributes(
        domain.signature_threshold,
        domain.revocation_threshold,
        domain.permissions,
        domain.mode,
        domain.standards,
    )


def encode_current_attributes(domain: DomainState) -> bytes:
    """The output of Query Domain Attributes."""
    return encode_attribute_pairs(current_attributes(domain).pairs())


def requested_attributes(domain: DomainState, command_input: bytes) -> DomainAttributes:
    """The attributes after applying the (id, value) pairs of a Set Attributes input."""
    try:
        pairs = decode_attribute_pairs(command_input)
    except MalformedTKEMessage:
        raise refusal(ReturnCode.BAD_COMMAND_INPUT) from None
    result = current_attributes(domain)
    for attribute, value in pairs:
        if attribute not in _FIELD_BY_ID:
            raise refusal(ReturnCode.BAD_ARGUMENTS)
        result = replace(result, **{_FIELD_BY_ID[AttributeId(attribute)]: value})
    return result


def _refuse(reason: Reason) -> NoReturn:
    raise refusal(ReturnCode.ATTRIBUTE_REFUSED, reason)


def _check_change_control(current: DomainAttributes, new: DomainAttributes) -> None:
    """§6.3, evaluated against the current permissions."""
    for change_bit, guarded in GUARDED_BY_CHANGE_BIT.items():
        locked = not current.permissions & change_bit
        if locked and new.permissions & change_bit:
            _refuse(Reason.CHANGE_BIT_SET_AGAIN)
        if locked and (current.permissions ^ new.permissions) & guarded:
            _refuse(Reason.PERMISSION_CHANGE_LOCKED)
    threshold_locks = (
        (Permission.CHANGE_SIGNATURE_THRESHOLD, "signature_threshold"),
        (Permission.CHANGE_REVOCATION_THRESHOLD, "revocation_threshold"),
    )
    for change_bit, name in threshold_locks:
        locked = not current.permissions & change_bit
        if locked and new.permissions & change_bit:
            _refuse(Reason.CHANGE_BIT_SET_AGAIN)
        if locked and getattr(current, name) != getattr(new, name):
            _refuse(Reason.THRESHOLD_CHANGE_LOCKED)


def _check_thresholds(domain: DomainState, new: DomainAttributes) -> None:
    """§6.2: imprint-mode exit, zero thresholds, admin count, threshold 1."""
    if domain.in_imprint_mode:
        if new.signature_threshold >= 1 and new.revocation_threshold < 1:
            _refuse(Reason.REVOCATION_THRESHOLD_ZERO)
    else:
        if new.signature_threshold == 0:
            _refuse(Reason.SIGNATURE_THRESHOLD_ZERO)
        if new.revocation_threshold == 0:
            _refuse(Reason.REVOCATION_THRESHOLD_ZERO_OUTSIDE_IMPRINT)
    if new.signature_threshold > len(domain.admins):
        _refuse(Reason.SIGNATURE_THRESHOLD_ABOVE_ADMINS)
    if new.revocation_threshold > len(domain.admins):
        _refuse(Reason.REVOCATION_THRESHOLD_ABOVE_ADMINS)
    threshold_one_allowed = bool(new.permissions & Permission.THRESHOLD_ONE)
    uses_threshold_one = 1 in (new.signature_threshold, new.revocation_threshold)
    if uses_threshold_one and not threshold_one_allowed:
        if domain.permissions & Permission.THRESHOLD_ONE:
            _refuse(Reason.THRESHOLD_ONE_IN_USE)
        if new.signature_threshold == 1:
            _refuse(Reason.SIGNATURE_THRESHOLD_ONE_NOT_PERMITTED)
        _refuse(Reason.REVOCATION_THRESHOLD_ONE_NOT_PERMITTED)


def set_domain_attributes(domain: DomainState, command_input: bytes) -> None:
    """Apply a Set Attributes input, or refuse with 209 and the reason, changing nothing."""
    new = requested_attributes(domain, command_input)
    _check_change_control(current_attributes(domain), new)
    _check_thresholds(domain, new)
    domain.signature_threshold = new.signature_threshold
    domain.revocation_threshold = new.revocation_threshold
    domain.permissions = new.permissions
    domain.mode = new.mode
    domain.standards = new.standards
