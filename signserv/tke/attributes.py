"""Domain attributes as (u32 id, u32 value) pairs, as Query and Set Attributes carry them (§5)."""

from __future__ import annotations

from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.fields import encode_u32

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
