"""HTPRequest and HTPResponse strings: the text envelopes of a CPRB (TKE-REFERENCE §3.4-§3.5)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from signserv.tke.errors import HTPResponseError, MalformedHTPMessage
from signserv.tke.wire.cprb import Cprb, decode_cprb

_REQUEST_SERVICE = ";PCI request;XPNUM   ;"
_REQUEST_SEPARATOR = ";        ;"
_REQUEST = re.compile(r"(\d+);PCI request;XPNUM   ;(\d+);        ;([0-9A-Fa-f]*)")
ERRINFO_LENGTH = 156
SUCCESS_ERROR_TYPE = "00"
# The SDK's texts for HTP-level errors about where a request is addressed, by trimmed
# "<type>-<return code>-<reason code>" (type 9: TKEHTP syntax errors).
_HTP_MESSAGES = {
    "9-1-0": "Crypto Module index is not an integer.",
    "9-2-0": "Crypto Module index is not within the allowed range.",
    "9-4-0": "Domain index is not an integer.",
    "9-5-0": "Domain index is not within the allowed range.",
}


@dataclass(frozen=True)
class HTPRequest:
    """A request for crypto module ``crypto_module`` carrying one CPRB."""

    crypto_module: int
    cprb: Cprb

    def encode(self) -> str:
        """``<L>;PCI request;XPNUM   ;<cm>;        ;<CPRB hex>``, L counting what follows it."""
        body = (
            f"{_REQUEST_SERVICE}{self.crypto_module}{_REQUEST_SEPARATOR}"
            f"{self.cprb.encode().hex().upper()}"
        )
        return f"{len(body)}{body}"


def _decode_hex(text: str, *, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise MalformedHTPMessage(f"{what} is not hexadecimal") from None


def decode_htp_request(text: str) -> HTPRequest:
    """Parse an HTPRequest string; the length prefix must match (§3.4)."""
    match = _REQUEST.fullmatch(text)
    if match is None:
        raise MalformedHTPMessage("not an HTPRequest: <L>;PCI request;XPNUM   ;<cm>;        ;<hex>")
    length, module, cprb_hex = match.groups()
    if int(length) != len(text) - len(length):
        raise MalformedHTPMessage(f"HTPRequest length prefix {length} does not match its text")
    return HTPRequest(
        crypto_module=int(module), cprb=decode_cprb(_decode_hex(cprb_hex, what="CPRB"))
    )


@dataclass(frozen=True)
class HTPError:
    """The fixed columns of an HTPResponse ERRINFO field (§3.5)."""

    error_type: str = SUCCESS_ERROR_TYPE
    return_code: str = "00000000"
    reason_code: str = "00000000"
    program_id: str = ""
    location: str = ""
    text: str = ""

    def encode(self) -> str:
        """The 156 fixed-width characters: 2 + 8 + 8 + 8 + 30 + 100."""
        columns = (
            (self.error_type, 2),
            (self.return_code, 8),
            (self.reason_code, 8),
            (self.program_id, 8),
            (self.location, 30),
            (self.text, 100),
        )
        for value, width in columns:
            if len(value) > width or ";" in value:
                raise ValueError(f"ERRINFO column {value!r} does not fit {width} characters")
        return "".join(value.ljust(width) for value, width in columns)


def encode_htp_response(cprb: Cprb, error: HTPError | None = None) -> str:
    """``<L>;<ERRINFO>;<CPRB hex>``; a successful response has error type ``00``."""
    body = f";{(error or HTPError()).encode()};{cprb.encode().hex().upper()}"
    return f"{len(body)}{body}"


def htp_error_message(error_type: str, return_code: str, reason_code: str) -> str:
    """The SDK's message for an ERRINFO triple, or its generic text naming the three codes."""
    codes = (error_type.strip(), return_code.strip(), reason_code.strip())
    known = _HTP_MESSAGES.get("-".join(codes))
    if known is not None:
        return known
    return "Error type: {}, return code: {}, reason code: {}".format(*codes)


def decode_htp_response(text: str) -> Cprb:
    """The CPRB of a successful HTPResponse; an HTP-level error raises :class:`HTPResponseError`.

    An error answer may stop after ERRINFO (``<L>;<ERRINFO>``): it is read like the SDK does,
    as an HTP error, not as a malformed response.
    """
    fields = text.split(";")
    if len(fields) < 2:
        raise MalformedHTPMessage("an HTPResponse has no ';'-separated error information")
    errinfo = fields[1]
    if len(errinfo) < ERRINFO_LENGTH:
        raise MalformedHTPMessage(f"HTPResponse ERRINFO is {len(errinfo)} characters, not 156")
    error_type, return_code, reason_code = errinfo[0:2], errinfo[2:10], errinfo[10:18]
    if error_type != SUCCESS_ERROR_TYPE:
        raise HTPResponseError(
            error_type,
            return_code,
            reason_code,
            errinfo[56:156],
            message=htp_error_message(error_type, return_code, reason_code),
            program_id=errinfo[18:26],
            location=errinfo[26:56],
        )
    if len(fields) < 3:
        raise MalformedHTPMessage("a successful HTPResponse has no CPRB field")
    return decode_cprb(_decode_hex(fields[2], what="HTPResponse CPRB"))
