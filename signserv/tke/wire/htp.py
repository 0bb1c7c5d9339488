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


def decode_htp_response(text: str) -> Cprb:
    """The CPRB of a successful HTPResponse; an HTP-level error raises :class:`HTPResponseError`."""
    fields = text.split(";")
    if len(fields) < 3:
        raise MalformedHTPMessage("an HTPResponse has three ';'-separated fields")
    errinfo = fields[1]
    if len(errinfo) < ERRINFO_LENGTH:
        raise MalformedHTPMessage(f"HTPResponse ERRINFO is {len(errinfo)} characters, not 156")
    if errinfo[0:2] != SUCCESS_ERROR_TYPE:
        raise HTPResponseError(errinfo[0:2], errinfo[2:10], errinfo[10:18], errinfo[56:156])
    return decode_cprb(_decode_hex(fields[2], what="HTPResponse CPRB"))
