"""The 32-byte CPRB header that carries EP11 payloads to a crypto unit (TKE-REFERENCE §3.4-§3.5)."""

from __future__ import annotations

from dataclasses import dataclass

from signserv.tke.errors import MalformedHTPMessage

CPRB_HEADER_BYTES = 32
REQUEST_FLAGS = 0x80
RESPONSE_FLAGS = 0x00
_VERSION = 0x04
_MARKER = b"T4"


@dataclass(frozen=True)
class Cprb:
    """A CPRB: the domain it addresses, its flags, the EP11 return/reason codes, the payload."""

    domain: int
    payload: bytes
    flags: int = REQUEST_FLAGS
    return_code: int = 0
    reason_code: int = 0

    def encode(self) -> bytes:
        """Header (§3.4 table) followed by the payload."""
        header = (
            CPRB_HEADER_BYTES.to_bytes(2, "big")
            + bytes([_VERSION, 0, 0, self.flags])
            + _MARKER
            + bytes(4)  # partition id
            + self.domain.to_bytes(4, "big")
            + self.return_code.to_bytes(2, "big")
            + self.reason_code.to_bytes(2, "big")
            + bytes(8)
            + len(self.payload).to_bytes(4, "big")
        )
        return header + self.payload

    def as_response(self, payload: bytes) -> Cprb:
        """The response CPRB: the request header echoed with flags ``00`` and rc 0 (§3.5)."""
        return Cprb(domain=self.domain, payload=payload, flags=RESPONSE_FLAGS)


def decode_cprb(encoded: bytes) -> Cprb:
    """Parse a CPRB; the payload must be exactly as long as the header says."""
    if len(encoded) < CPRB_HEADER_BYTES:
        raise MalformedHTPMessage(
            f"CPRB of {len(encoded)} bytes is shorter than its 32-byte header"
        )
    if int.from_bytes(encoded[0:2], "big") != CPRB_HEADER_BYTES:
        raise MalformedHTPMessage("CPRB header length is not 32")
    payload_length = int.from_bytes(encoded[28:32], "big")
    payload = encoded[CPRB_HEADER_BYTES:]
    if len(payload) != payload_length:
        raise MalformedHTPMessage(
            f"CPRB announces {payload_length} payload bytes, carries {len(payload)}"
        )
    return Cprb(
        domain=int.from_bytes(encoded[12:16], "big"),
        payload=payload,
        flags=encoded[5],
        return_code=int.from_bytes(encoded[16:18], "big"),
        reason_code=int.from_bytes(encoded[18:20], "big"),
    )
