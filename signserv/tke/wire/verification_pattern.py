"""The verification pattern (VP) naming a master key without revealing it (TKE-REFERENCE §6.4)."""

from __future__ import annotations

import hashlib

VP_BYTES = 32
COMPARED_VP_BYTES = 28


def calc_vp(key: bytes) -> bytes:
    """``SHA-256(01 || key)`` with bytes 28..31 zeroed, as current firmware reports it."""
    digest = hashlib.sha256(b"\x01" + key).digest()
    return digest[:COMPARED_VP_BYTES] + bytes(VP_BYTES - COMPARED_VP_BYTES)


def same_master_key(first_vp: bytes, second_vp: bytes) -> bool:
    """Compare VPs on their first 28 bytes: older firmware did not zero the rest (§9 item 17)."""
    return first_vp[:COMPARED_VP_BYTES] == second_vp[:COMPARED_VP_BYTES]
