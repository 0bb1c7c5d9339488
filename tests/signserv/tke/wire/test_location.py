"""Crypto-unit location strings (TKE-REFERENCE §3.6, vector 18)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signserv.tke.wire import InvalidLocation, Location, parse_location


def test_location_gives_module_1_domain_15() -> None:
    """Vector 18: `[us-south].[AZ1-CS2].[01].[15]`."""
    location = parse_location("[us-south].[AZ1-CS2].[01].[15]")
    assert location == Location("us-south", "AZ1-CS2", 1, 15)
    assert location.partial == "[us-south].[AZ1-CS2].[01]"


@pytest.mark.parametrize(
    "hostile_location",
    [
        "[us-south].[AZ1.CS2].[01].[15]",
        "[us-south].[AZ1-CS2].[01]",
        "us-south.[AZ1-CS2].[01].[15]",
        "[us-south].[AZ1-CS2].01.[15]",
        "[us-south].[AZ1-CS2].[0x1].[15]",
        "[us-south].[AZ1-CS2].[01].[]",
    ],
    ids=[
        "dot_inside_host",
        "three_parts",
        "zone_without_brackets",
        "index_without_brackets",
        "hex_index",
        "empty_domain",
    ],
)
def test_malformed_locations_are_refused(hostile_location: str) -> None:
    """Vector 18: anything but four bracketed parts with decimal indexes raises."""
    with pytest.raises(InvalidLocation):
        parse_location(hostile_location)


parts = st.text(alphabet=st.characters(blacklist_characters=".", blacklist_categories=("Cs",)))


@given(
    parts, parts, st.integers(min_value=0, max_value=999), st.integers(min_value=0, max_value=999)
)
def test_encode_then_parse_round_trips(zone: str, host: str, module: int, domain: int) -> None:
    """Any dot-free zone and host and any indexes come back."""
    location = Location(zone, host, module, domain)
    assert parse_location(location.encode()) == location
