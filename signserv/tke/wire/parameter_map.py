"""The EP11 parameter map of Export WK requests and responses (TKE-REFERENCE §6.5).

``SEQUENCE OF OCTET STRING``, each element ``tag(2) || u32 index(4) || data``. Element order
is not meaningful (the SDK's is random), so readers look entries up by (tag, index).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from signserv import der
from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire.fields import encode_u32

_PREFIX_BYTES = 6
# §6.5: scope 0x0C = leave the KPH and OA certificates out of the export output.
SCOPE_WITHOUT_CERTIFICATES = 0x0000000C


class ParameterTag(IntEnum):
    """Tags of parameter-map entries."""

    ADMIN_SKIS = 0x000A
    ADMIN_CERTIFICATES = 0x000B
    DOMAIN_INFO = 0x000C
    DOMAIN_ATTRIBUTES = 0x000F
    TRANSACTION_COUNTER = 0x0011
    OA_CERTIFICATE = 0x0015
    CONTROL_POINTS = 0x0017
    ENCRYPTED_KEY_PART = 0x0019
    KEY_PART_OA_SIGNATURE = 0x001A
    M_POLICY = 0x001C
    KPH_CERTIFICATE = 0x001D
    STATE_SCOPE = 0x001F


@dataclass(frozen=True)
class ParameterEntry:
    """One element: a tag, an index (or auxiliary u32), and data."""

    tag: int
    index: int
    data: bytes = b""

    def encode(self) -> bytes:
        """``tag(2) || u32(index) || data``."""
        return self.tag.to_bytes(2, "big") + encode_u32(self.index) + self.data


def encode_parameter_map(entries: list[ParameterEntry]) -> bytes:
    """The DER SEQUENCE OF OCTET STRING, entries in the order given."""
    return der.encode_sequence(*(der.encode_octet_string(entry.encode()) for entry in entries))


def decode_parameter_map(encoded: bytes) -> list[ParameterEntry]:
    """Parse a parameter map; every element must hold at least the 6-byte prefix."""
    try:
        outer = der.expect_tlv(
            encoded, der.TAG_SEQUENCE, what="parameter map", lenient_lengths=True
        )
        elements = der.split_elements(outer.content, lenient_lengths=True)
    except der.DERError as exc:
        raise MalformedTKEMessage(f"parameter map: {exc}") from None
    entries = []
    for element in elements:
        if element.tag != der.TAG_OCTET_STRING or len(element.content) < _PREFIX_BYTES:
            raise MalformedTKEMessage(
                "parameter map element is not an OCTET STRING of at least 6 bytes"
            )
        entries.append(
            ParameterEntry(
                tag=int.from_bytes(element.content[0:2], "big"),
                index=int.from_bytes(element.content[2:6], "big"),
                data=element.content[_PREFIX_BYTES:],
            )
        )
    return entries


def find_parameter(entries: list[ParameterEntry], tag: int, index: int) -> bytes:
    """The data of entry (tag, index), or :class:`MalformedTKEMessage` naming the missing entry."""
    for entry in entries:
        if entry.tag == tag and entry.index == index:
            return entry.data
    raise MalformedTKEMessage(f"parameter map has no entry {tag:04x}/{index}")


def export_request_parameters(kph_certificate: bytes) -> list[ParameterEntry]:
    """What Export WK sends: M policy 1, the KPH certificate, the scope without certificates."""
    return [
        ParameterEntry(ParameterTag.M_POLICY, 1),
        ParameterEntry(ParameterTag.KPH_CERTIFICATE, 0, kph_certificate),
        ParameterEntry(ParameterTag.STATE_SCOPE, SCOPE_WITHOUT_CERTIFICATES),
    ]
