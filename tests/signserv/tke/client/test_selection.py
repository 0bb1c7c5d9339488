"""The DOMAINS selection file and crypto-unit number lists."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signserv.tke.client.selection import (
    SelectionError,
    parse_unit_numbers,
    read_selected_ids,
    write_selection,
)
from signserv.tke.client.session import CryptoUnit, parse_crypto_units

HSMS: dict[str, object] = {
    "hsms": [
        {
            "hsm_id": "op-1",
            "location": "[us-south].[AZ1-CS1].[01].[15]",
            "serial_number": "93AABC12",
        },
        {
            "hsm_id": "op-2",
            "location": "[us-south].[AZ2-CS2].[02].[15]",
            "serial_number": "93AABC13",
        },
    ],
    "source_hsms": [
        {"hsm_id": "rc-1", "location": "[us-east].[AZ1-RC1].[01].[15]", "serial_number": "93AABC14"}
    ],
    "failover_hsms": None,
}


@pytest.fixture
def units() -> list[CryptoUnit]:
    """Two operational units and one recovery unit."""
    return parse_crypto_units(HSMS)


def test_units_are_listed_operational_then_recovery(units: list[CryptoUnit]) -> None:
    """GET /hsms order: hsms, then source_hsms (recovery), then failover_hsms (§3.2)."""
    assert [(unit.hsm_id, unit.unit_type) for unit in units] == [
        ("op-1", "operational"),
        ("op-2", "operational"),
        ("rc-1", "recovery"),
    ]
    assert units[1].location.crypto_module == 2


def test_without_a_domains_file_every_unit_is_selected(
    tmp_path: Path, units: list[CryptoUnit]
) -> None:
    """A fresh workstation targets all units."""
    assert read_selected_ids(tmp_path, units) == {"op-1", "op-2", "rc-1"}


def test_selection_round_trips_through_a_private_file(
    tmp_path: Path, units: list[CryptoUnit]
) -> None:
    """The selection is written with mode 0600 and read back unchanged."""
    write_selection(tmp_path, units, {"op-2"})
    assert read_selected_ids(tmp_path, units) == {"op-2"}
    domains = tmp_path / "DOMAINS"
    assert stat.S_IMODE(domains.stat().st_mode) == 0o600
    entries = json.loads(domains.read_text())
    assert [entry["selected"] for entry in entries] == [False, True, False]
    assert entries[0]["domain_num"] == 15


@pytest.mark.parametrize("text", ["{", '{"hsm_id": "x"}', "[1, 2]"])
def test_a_malformed_domains_file_is_an_error(
    tmp_path: Path, units: list[CryptoUnit], text: str
) -> None:
    """A DOMAINS file that is not an array of objects is refused, naming the file."""
    (tmp_path / "DOMAINS").write_text(text)
    with pytest.raises(SelectionError, match="DOMAINS"):
        read_selected_ids(tmp_path, units)


@pytest.mark.parametrize(
    ("text", "numbers"), [("1", [1]), ("1 3", [1, 3]), (" 2,3 ", [2, 3]), ("3, 1", [3, 1])]
)
def test_unit_numbers_accept_spaces_and_commas(text: str, numbers: list[int]) -> None:
    """Numbers may be separated by spaces or commas."""
    assert parse_unit_numbers(text, 3) == numbers


@pytest.mark.parametrize("text", ["", "0", "4", "one", "1.5", "-1"])
def test_unit_numbers_out_of_range_are_refused(text: str) -> None:
    """Only numbers of listed units are accepted."""
    with pytest.raises(SelectionError):
        parse_unit_numbers(text, 3)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(selected=st.sets(st.sampled_from(["op-1", "op-2", "rc-1"])))
def test_any_selection_round_trips(
    tmp_path: Path, units: list[CryptoUnit], selected: set[str]
) -> None:
    """Every subset of units written is the subset read back."""
    write_selection(tmp_path, units, selected)
    assert read_selected_ids(tmp_path, units) == selected


@given(numbers=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=5))
def test_unit_numbers_round_trip_through_text(numbers: list[int]) -> None:
    """Numbers written with mixed separators parse back in order."""
    assert parse_unit_numbers(", ".join(map(str, numbers)), 9) == numbers
