"""The few ASN.1 DER pieces the TKE formats need: TLVs, INTEGERs, OCTET STRINGs, SEQUENCEs.

Decoding is strict by default (definite, minimal lengths; minimal INTEGERs), the way Go's
``encoding/asn1`` treats what a signing service returns (TKE-REFERENCE §1.5). ``lenient_lengths``
accepts the non-minimal BER lengths that the SDK tolerates in crypto-unit responses (§3.7).
"""

from __future__ import annotations

from dataclasses import dataclass

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_SEQUENCE = 0x30


class DERError(ValueError):
    """Bytes that are not the DER the caller asked for; the message says where and why."""


@dataclass(frozen=True)
class TLV:
    """One decoded element: its tag byte, its content, and the offset just past it."""

    tag: int
    content: bytes
    end: int


def encode_length(length: int) -> bytes:
    """Definite-form DER length octets (short form below 128, else the shortest long form)."""
    if length < 0:
        raise ValueError("length must not be negative")
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode_tlv(tag: int, content: bytes) -> bytes:
    """One element: tag byte, DER length, content."""
    return bytes([tag]) + encode_length(len(content)) + content


def encode_sequence(*elements: bytes) -> bytes:
    """A SEQUENCE of already-encoded elements."""
    return encode_tlv(TAG_SEQUENCE, b"".join(elements))


def encode_octet_string(content: bytes) -> bytes:
    """An OCTET STRING; empty content is still emitted (``04 00``), as the SDK does (§3.7)."""
    return encode_tlv(TAG_OCTET_STRING, content)


def encode_integer(value: int) -> bytes:
    """A non-negative INTEGER in minimal two's-complement form (a leading 00 only if needed)."""
    if value < 0:
        raise ValueError("only non-negative INTEGERs are used by the TKE formats")
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return encode_tlv(TAG_INTEGER, body)


def read_tlv(data: bytes, offset: int = 0, *, lenient_lengths: bool = False) -> TLV:
    """Decode the element that starts at ``offset`` (single-byte tags only)."""
    if offset + 2 > len(data):
        raise DERError(f"truncated element at offset {offset}")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DERError(f"multi-byte tag at offset {offset} is not used by these formats")
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DERError(f"indefinite length at offset {offset} is not DER")
    else:
        count = first & 0x7F
        if count > 4 or position + count > len(data):
            raise DERError(f"bad length octets at offset {offset}")
        length = int.from_bytes(data[position : position + count], "big")
        if not lenient_lengths and (length < 0x80 or data[position] == 0):
            raise DERError(f"length at offset {offset} is not minimally encoded")
        position += count
    end = position + length
    if end > len(data):
        raise DERError(
            f"element at offset {offset} claims {length} content bytes, "
            f"only {len(data) - position} present"
        )
    return TLV(tag=tag, content=data[position:end], end=end)


def expect_tlv(
    data: bytes, tag: int, offset: int = 0, *, what: str, lenient_lengths: bool = False
) -> TLV:
    """Decode one element and require its tag; ``what`` names it in the error."""
    element = read_tlv(data, offset, lenient_lengths=lenient_lengths)
    if element.tag != tag:
        raise DERError(f"{what}: expected tag 0x{tag:02x}, found 0x{element.tag:02x}")
    return element


def split_elements(content: bytes, *, lenient_lengths: bool = False) -> list[TLV]:
    """Decode the consecutive elements that fill ``content`` exactly."""
    elements = []
    offset = 0
    while offset < len(content):
        element = read_tlv(content, offset, lenient_lengths=lenient_lengths)
        elements.append(element)
        offset = element.end
    return elements


def decode_positive_integer(content: bytes, *, what: str) -> int:
    """The value of a minimally encoded, positive INTEGER's content octets."""
    if not content:
        raise DERError(f"{what}: empty INTEGER")
    if len(content) > 1 and (
        (content[0] == 0x00 and content[1] < 0x80) or (content[0] == 0xFF and content[1] >= 0x80)
    ):
        raise DERError(f"{what}: INTEGER is not minimally encoded")
    if content[0] >= 0x80:
        raise DERError(f"{what}: INTEGER is negative")
    value = int.from_bytes(content, "big")
    if value == 0:
        raise DERError(f"{what}: INTEGER is zero")
    return value


def decode_integer_pair(
    der: bytes, *, names: tuple[str, str], allow_trailing: bool
) -> tuple[int, int]:
    """Decode ``SEQUENCE { INTEGER a, INTEGER b }`` strictly; ``names`` label the errors.

    ``allow_trailing`` accepts bytes after the SEQUENCE, as Go's ``asn1.Unmarshal`` does for the
    public key (TKE-REFERENCE §1.5); nothing may follow the two INTEGERs inside it.
    """
    outer = expect_tlv(der, TAG_SEQUENCE, what=f"SEQUENCE {{{names[0]}, {names[1]}}}")
    if outer.end != len(der) and not allow_trailing:
        raise DERError(f"{len(der) - outer.end} trailing bytes after the SEQUENCE")
    first = expect_tlv(outer.content, TAG_INTEGER, what=names[0])
    second = expect_tlv(outer.content, TAG_INTEGER, first.end, what=names[1])
    if second.end != len(outer.content):
        raise DERError(f"SEQUENCE holds more than {names[0]} and {names[1]}")
    return (
        decode_positive_integer(first.content, what=names[0]),
        decode_positive_integer(second.content, what=names[1]),
    )
