"""Errors of ``signserv.tke``: one base, one subclass per condition a caller can act on."""

from __future__ import annotations

from signserv.errors import SignservError


class TKEError(SignservError):
    """Base of every error the crypto-unit side (formats, transport, emulator) raises on purpose."""


class MalformedTKEMessage(TKEError, ValueError):
    """Bytes or text that do not follow a TKE wire format; the message says which and why."""


class MalformedAdminCertificate(MalformedTKEMessage):
    """An administrator certificate whose name, public key or SKI cannot be read (§2.2)."""


class AdministratorNameTooLong(TKEError, ValueError):
    """An administrator name longer than 30 bytes once UTF-8 encoded (§2.3)."""


class MalformedSignerInfo(MalformedTKEMessage):
    """A SignerInfo that does not have the shape of TKE-REFERENCE §4.2."""


class MalformedHTPMessage(MalformedTKEMessage):
    """An HTPRequest, HTPResponse or CPRB that does not follow §3.4-§3.5."""


class InvalidLocation(MalformedTKEMessage):
    """A crypto-unit location that is not four bracketed, dot-separated parts (§3.6)."""


class HTPResponseError(TKEError):
    """The HTP layer reported an error (ERRINFO type other than ``00``, §3.5).

    The text is the SDK's: ``HTPResponse error.`` and the ERRINFO columns, with ``message``
    the SDK's reading of the type/return/reason triple.
    """

    def __init__(
        self,
        error_type: str,
        return_code: str,
        reason_code: str,
        text: str,
        *,
        message: str,
        program_id: str = "",
        location: str = "",
    ) -> None:
        super().__init__(
            "HTPResponse error."
            f"\nError message:  {message}"
            f"\nProgram ID:     {program_id.rstrip()}"
            f"\nError location: {location.rstrip()}"
            f"\nError text:     {text.rstrip()}"
        )
        self.error_type = error_type
        self.return_code = return_code
        self.reason_code = reason_code
        self.text = text


class CryptoUnitRefused(TKEError):
    """A crypto unit refused a request with an EP11 return code and reason code (§3.10)."""

    def __init__(self, return_code: int, reason: int | None, message: str) -> None:
        codes = f"rc {return_code}" if reason is None else f"rc {return_code}, reason {reason}"
        super().__init__(f"{message} ({codes})")
        self.return_code = return_code
        self.reason = reason


class UnknownCryptoUnit(TKEError, LookupError):
    """An ``hsm_id`` that names no crypto unit of the service instance."""


class EmulatorStateError(TKEError):
    """The emulator's state file cannot be read, locked or written; the message names the file."""
