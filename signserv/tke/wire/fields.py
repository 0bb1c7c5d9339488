"""Field codecs of the EP11 payloads: big-endian u32 and SEQUENCEs of OCTET STRINGs (§3.7)."""

from __future__ import annotations

from signserv import der
from signserv.tke.errors import MalformedTKEMessage

U32_MAX = 0xFFFFFFFF


def encode_u32(value: int) -> bytes:
    """Four big-endian bytes; TKE-REFERENCE writes this ``u32(n)``."""
    if not 0 <= value <= U32_MAX:
        raise ValueError(f"{value} does not fit in an unsigned 32-bit field")
    return value.to_bytes(4, "big")


def decode_u32(field: bytes, *, what: str) -> int:
    """The value of a field that must be exactly four bytes."""
    if len(field) != 4:
        raise MalformedTKEMessage(f"{what}: expected 4 bytes, found {len(field)}")
    return int.from_bytes(field, "big")


def require_function_id(field: bytes, expected: int, *, what: str) -> None:
    """Refuse a function id other than ``expected`` (00010029 m_admin, 00010026 get_xcp_info)."""
    if decode_u32(field, what=f"{what} function id") != expected:
        raise MalformedTKEMessage(f"{what}: function id {field.hex()} is not {expected:08x}")


def encode_octet_sequence(*fields: bytes) -> bytes:
    """``SEQUENCE { OCTET STRING ... }``; empty fields are still written as ``04 00`` (§3.7)."""
    return der.encode_sequence(*(der.encode_octet_string(field) for field in fields))


def decode_octet_sequence(encoded: bytes, *, counts: tuple[int, ...], what: str) -> list[bytes]:
    """The OCTET STRING contents of a SEQUENCE holding one of ``counts`` elements.

    Lengths are read BER-leniently, as the SDK does (§3.7); nothing may follow the SEQUENCE.
    """
    try:
        outer = der.expect_tlv(encoded, der.TAG_SEQUENCE, what=what, lenient_lengths=True)
        if outer.end != len(encoded):
            raise MalformedTKEMessage(
                f"{what}: {len(encoded) - outer.end} bytes after the SEQUENCE"
            )
        elements = der.split_elements(outer.content, lenient_lengths=True)
    except der.DERError as exc:
        raise MalformedTKEMessage(f"{what}: {exc}") from None
    if len(elements) not in counts:
        expected = " or ".join(str(count) for count in counts)
        raise MalformedTKEMessage(f"{what}: expected {expected} elements, found {len(elements)}")
    for position, element in enumerate(elements):
        if element.tag != der.TAG_OCTET_STRING:
            raise MalformedTKEMessage(
                f"{what}: element {position} has tag 0x{element.tag:02x}, not OCTET STRING"
            )
    return [element.content for element in elements]
