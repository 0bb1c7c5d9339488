"""EP11 return and reason codes of admin responses and what they mean (TKE-REFERENCE §3.10)."""

from __future__ import annotations

from enum import IntEnum

from signserv.tke.errors import CryptoUnitRefused


class ReturnCode(IntEnum):
    """Inner return codes of an xcpAdminRspBlk (32 is EP11's CKR_DATA_INVALID)."""

    OK = 0
    INVALID_DOMAIN = 3
    BAD_ARGUMENTS = 7
    DATA_INVALID = 32
    BAD_COMMAND_INPUT = 33
    PERMISSION_DENIED = 80
    KEY_NOT_FOUND = 96
    VERIFICATION_PATTERN_MISMATCH = 101
    KEY_MISSING = 102
    INVALID_TRANSACTION_COUNTER = 163
    NOT_ALLOWED_IN_IMPRINT_MODE = 179
    SIGNATURE_INVALID = 192
    SIGNATURE_MALFORMED = 193
    NOT_ENOUGH_SIGNATURES = 208
    ATTRIBUTE_REFUSED = 209
    ADMIN_EXISTS = 256
    SIGNER_NOT_ADMIN = 257
    TOO_MANY_ADMINS = 261


class Reason(IntEnum):
    """Reason codes carried in the first four output bytes of a refused command."""

    ADMIN_NOT_FOUND = 32
    REVOCATION_THRESHOLD_ZERO = 36
    ADMIN_EXISTS = 38
    MAXIMUM_ADMINS = 39
    VERIFICATION_PATTERN_MISMATCH = 48
    RANDOM_WK_NOT_PERMITTED = 52
    REVOCATION_THRESHOLD_ZERO_LEAVING_IMPRINT = 56
    SIGNATURE_THRESHOLD_ABOVE_ADMINS = 57
    REVOCATION_THRESHOLD_ABOVE_ADMINS = 58
    CERTIFICATE_NOT_FOUND = 60
    BELOW_THRESHOLD_AFTER_REMOVAL = 66
    CHANGE_BIT_SET_AGAIN = 69
    PERMISSION_CHANGE_LOCKED = 70
    THRESHOLD_CHANGE_LOCKED = 71
    THRESHOLD_ONE_IN_USE = 74
    SIGNATURE_THRESHOLD_ZERO = 76
    REVOCATION_THRESHOLD_ZERO_OUTSIDE_IMPRINT = 77
    SIGNATURE_THRESHOLD_ONE_NOT_PERMITTED = 78
    REVOCATION_THRESHOLD_ONE_NOT_PERMITTED = 79
    WK_IMPORT_NOT_PERMITTED = 80
    ONE_PART_IMPORT_NOT_PERMITTED = 81
    INVALID_KPH_CERTIFICATE = 102
    WK_EXPORT_NOT_PERMITTED = 131


_BY_REASON: dict[tuple[int, int], str] = {
    (3, 102): "The KPH certificate supplied to Export WK is invalid.",
    (32, 32): "The administrator (SKI) is not installed in the crypto unit.",
    (80, 52): "The domain permissions do not allow generating a random master key.",
    (80, 80): "The domain permissions do not allow importing a master key.",
    (80, 81): "The domain permissions do not allow importing a master key in a single part.",
    (80, 131): "The domain permissions do not allow exporting the master key.",
    (96, 60): "The requested key or certificate does not exist.",
    (101, 48): "The verification pattern does not match the new master key register.",
    (209, 36): "Leaving imprint mode needs a revocation threshold of at least 1.",
    (209, 56): "Leaving imprint mode needs a revocation threshold of at least 1.",
    (209, 57): "The signature threshold is larger than the number of administrators.",
    (209, 58): "The revocation threshold is larger than the number of administrators.",
    (209, 66): "Removing the administrator would leave fewer administrators than a threshold.",
    (209, 69): "A change-control bit that is reset cannot be set again.",
    (209, 70): "A permission cannot change while its change-control bit is reset.",
    (209, 71): "A threshold cannot change while its change-control bit is reset.",
    (209, 74): "Threshold 1 permission cannot be removed while a threshold is 1.",
    (209, 76): "The signature threshold cannot be set to 0 outside imprint mode.",
    (209, 77): "The revocation threshold cannot be set to 0 outside imprint mode.",
    (209, 78): "A signature threshold of 1 needs the 'threshold 1 allowed' permission.",
    (209, 79): "A revocation threshold of 1 needs the 'threshold 1 allowed' permission.",
    (256, 38): "The administrator is already installed in the crypto unit.",
    (261, 39): "The crypto unit already has the maximum number of administrators (8).",
}

_BY_RETURN_CODE: dict[int, str] = {
    3: "The request names the wrong domain, instance or module.",
    7: "The request has bad arguments.",
    32: "Invalid data was provided for the command.  The format or value of the data is incorrect.",
    33: "The command input is missing or unexpected.",
    80: "The domain permissions do not allow this operation.",
    96: "The requested key or certificate does not exist.",
    101: "The verification pattern does not match.",
    102: "A key the command needs is missing.",
    163: "The transaction counter is not above the crypto unit's counter (a replayed command?).",
    179: "The operation is not allowed while the crypto unit is in imprint mode.",
    192: "A signature on the command is invalid.",
    193: "A signature on the command is malformed.",
    208: "The command does not carry enough administrator signatures.",
    209: "The domain attributes cannot be set to these values.",
    256: "The administrator is already installed in the crypto unit.",
    257: "A signer of the command is not an installed administrator.",
    261: "The crypto unit already has the maximum number of administrators.",
}


def describe_refusal(return_code: int, reason: int | None) -> str:
    """A sentence saying what an EP11 return/reason code pair means."""
    if reason is not None and (return_code, reason) in _BY_REASON:
        return _BY_REASON[(return_code, reason)]
    return _BY_RETURN_CODE.get(
        return_code, f"The crypto unit refused the request (EP11 rc {return_code})."
    )


def refusal(return_code: int, reason: int | None = None) -> CryptoUnitRefused:
    """The :class:`CryptoUnitRefused` for a code pair, with its readable message."""
    return CryptoUnitRefused(return_code, reason, describe_refusal(return_code, reason))
