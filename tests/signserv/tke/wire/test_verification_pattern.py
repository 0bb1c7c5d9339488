"""Verification patterns (TKE-REFERENCE §6.4, vector 19)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from signserv.tke.wire import calc_vp, same_master_key


def test_vp_of_zero_key_matches_vector_19() -> None:
    """Vector 19: Calc_vp of 32 zero bytes."""
    assert (
        calc_vp(bytes(32)).hex()
        == "1a7dfdeaffeedac489287e85be5e9c049a2ff6470f55cf30260f553900000000"
    )


def test_vp_of_counting_key_matches_vector_19() -> None:
    """Vector 19: Calc_vp(00 01 … 1F)."""
    assert calc_vp(bytes(range(32))).hex() == (
        "491176b0f443c65a7c7d72df47d6cbc0d04e111fb5a619f60d3e776700000000"
    )


def test_old_firmware_vp_compares_equal_on_first_28_bytes() -> None:
    """§9 item 17: bytes 28..31 are ignored when comparing."""
    vp = calc_vp(bytes(32))
    assert same_master_key(vp, vp[:28] + b"\xff" * 4)
    assert not same_master_key(vp, calc_vp(bytes(range(32))))


@given(st.binary(min_size=32, max_size=32))
def test_vp_is_32_bytes_ending_in_four_zeros(key: bytes) -> None:
    """Every VP has the current-firmware shape."""
    vp = calc_vp(key)
    assert len(vp) == 32 and vp[28:] == bytes(4)
