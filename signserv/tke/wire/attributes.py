"""Domain attributes as (u32 id, u32 value) pairs, as Query and Set Attributes carry them (§5)."""

from __future__ import annotations

from dataclasses import dataclass

from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire.commands import AttributeId
from signserv.tke.wire.fields import encode_u32

_PAIR_BYTES = 8


def encode_attribute_pairs(pairs: list[tuple[int, int]]) -> bytes:
    """``u32 id || u32 value`` for every pair, in the order given."""
    return b"".join(encode_u32(attribute) + encode_u32(value) for attribute, value in pairs)


def decode_attribute_pairs(encoded: bytes) -> list[tuple[int, int]]:
    """The (id, value) pairs of an attribute list; its length must be a multiple of 8."""
    if len(encoded) % _PAIR_BYTES:
        raise MalformedTKEMessage(f"attribute list of {len(encoded)} bytes is not a multiple of 8")
    return [
        (
            int.from_bytes(encoded[offset : offset + 4], "big"),
            int.from_bytes(encoded[offset + 4 : offset + 8], "big"),
        )
        for offset in range(0, len(encoded), _PAIR_BYTES)
    ]


@dataclass(frozen=True)
class DomainAttributes:
    """A domain's thresholds, permissions, mode and standards (Query/Set Domain Attributes, §5)."""

    signature_threshold: int
    revocation_threshold: int
    permissions: int
    mode: int
    standards: int = 0

    @property
    def imprint_mode(self) -> bool:
        """A domain is in imprint mode while its signature threshold is 0 (§6.2)."""
        return self.signature_threshold == 0

    def pairs(self) -> list[tuple[int, int]]:
        """All five (id, value) pairs in id order, as Query Domain Attributes answers."""
        return [
            (AttributeId.SIGNATURE_THRESHOLD, self.signature_threshold),
            (AttributeId.REVOCATION_THRESHOLD, self.revocation_threshold),
            (AttributeId.PERMISSIONS, self.permissions),
            (AttributeId.MODE, self.mode),
            (AttributeId.STANDARDS, self.standards),
        ]

    def with_thresholds(self, signature: int, revocation: int) -> bytes:
        """Set Attributes input as the SDK sends it (ids 1-4); permissions and mode unchanged."""
        return encode_attribute_pairs(
            [
                (AttributeId.SIGNATURE_THRESHOLD, signature),
                (AttributeId.REVOCATION_THRESHOLD, revocation),
                (AttributeId.PERMISSIONS, self.permissions),
                (AttributeId.MODE, self.mode),
            ]
        )

    @classmethod
    def decode(cls, encoded: bytes) -> DomainAttributes:
        """Parse a Query Domain Attributes answer; both thresholds must be present."""
        values = dict(decode_attribute_pairs(encoded))
        missing = [
            attribute.name
            for attribute in (AttributeId.SIGNATURE_THRESHOLD, AttributeId.REVOCATION_THRESHOLD)
            if attribute not in values
        ]
        if missing:
            raise MalformedTKEMessage(f"domain attributes lack {', '.join(missing)}")
        return cls(
            signature_threshold=values[AttributeId.SIGNATURE_THRESHOLD],
            revocation_threshold=values[AttributeId.REVOCATION_THRESHOLD],
            permissions=values.get(AttributeId.PERMISSIONS, 0),
            mode=values.get(AttributeId.MODE, 0),
            standards=values.get(AttributeId.STANDARDS, 0),
        )
