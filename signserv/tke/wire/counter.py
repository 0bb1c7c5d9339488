"""The transaction counter every signed admin command carries (TKE-REFERENCE §4.4)."""

from __future__ import annotations

COUNTER_BYTES = 16


def increment_counter(counter: bytes) -> bytes:
    """``counter + 1`` as a big-endian integer of the same width, wrapping to zero on overflow."""
    if not counter:
        raise ValueError("a transaction counter has at least one byte")
    width = len(counter)
    value = (int.from_bytes(counter, "big") + 1) % (1 << (8 * width))
    return value.to_bytes(width, "big")
