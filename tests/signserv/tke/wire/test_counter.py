"""The transaction counter increment (TKE-REFERENCE §4.4, vector 20)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signserv.tke.wire import increment_counter


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("0000", "0001"),
        ("7fff", "8000"),
        ("fffd", "fffe"),
        ("ffff", "0000"),
        ("00" * 16, "00" * 15 + "01"),
    ],
)
def test_increment_matches_vector_20(before: str, after: str) -> None:
    """Width preserved, wrapping to zero."""
    assert increment_counter(bytes.fromhex(before)).hex() == after


def test_empty_counter_is_refused() -> None:
    """A counter has at least one byte."""
    with pytest.raises(ValueError):
        increment_counter(b"")


@given(st.binary(min_size=1, max_size=32))
def test_increment_adds_one_modulo_width(counter: bytes) -> None:
    """The result is the same width and one more, modulo 2^(8·width)."""
    result = increment_counter(counter)
    assert len(result) == len(counter)
    width = 1 << (8 * len(counter))
    assert int.from_bytes(result, "big") == (int.from_bytes(counter, "big") + 1) % width
