"""KPH certificate and export parameter map (TKE-REFERENCE §6.5, vectors 21-22)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signserv.contract import PublicPoint
from signserv.tke.wire import (
    MalformedTKEMessage,
    ParameterEntry,
    ParameterTag,
    build_kph_certificate,
    decode_parameter_map,
    encode_parameter_map,
    export_request_parameters,
    find_parameter,
    parse_kph_certificate,
)

coordinates = st.integers(min_value=1, max_value=(1 << 521) - 1)


def test_kph_certificate_for_generator_matches_vector_21(generator_point: PublicPoint) -> None:
    """Vector 21: 309 bytes, header at 36, X left-padded from 45."""
    certificate = build_kph_certificate(generator_point)
    assert len(certificate) == 309
    assert hashlib.sha256(certificate).hexdigest() == (
        "5339481930218a436263ce91998e0e5ffcb5d18039ba32042e34500378fd270d"
    )
    assert certificate[36:45] == bytes.fromhex("4b0101000085020904")
    assert certificate[45:48] == bytes.fromhex("00c685")


def test_export_parameters_for_generator_match_vector_22(generator_point: PublicPoint) -> None:
    """Vector 22: 339 bytes, three elements, readable in any order."""
    entries = export_request_parameters(build_kph_certificate(generator_point))
    encoded = encode_parameter_map(entries)
    assert len(encoded) == 339 and encoded[:4] == bytes.fromhex("3082014f")
    shuffled = [entries[2], entries[0], entries[1]]
    decoded = decode_parameter_map(encode_parameter_map(shuffled))
    kph = find_parameter(decoded, ParameterTag.KPH_CERTIFICATE, 0)
    assert parse_kph_certificate(kph) == generator_point


def test_missing_parameter_is_named() -> None:
    """§6.5: a response without 0019/0 is an error, not a crash."""
    with pytest.raises(MalformedTKEMessage, match="0019/0"):
        find_parameter([], ParameterTag.ENCRYPTED_KEY_PART, 0)


@pytest.mark.parametrize(
    "hostile_map",
    [b"", bytes.fromhex("3003040100"), bytes.fromhex("3002 0200".replace(" ", ""))],
    ids=["empty", "element_shorter_than_prefix", "integer_element"],
)
def test_malformed_parameter_maps_are_refused(hostile_map: bytes) -> None:
    """Every element is an OCTET STRING of at least six bytes."""
    with pytest.raises(MalformedTKEMessage):
        decode_parameter_map(hostile_map)


def test_kph_certificate_of_wrong_size_is_refused(generator_point: PublicPoint) -> None:
    """A KPH certificate is exactly 309 bytes."""
    with pytest.raises(MalformedTKEMessage):
        parse_kph_certificate(build_kph_certificate(generator_point)[:-1])


@given(coordinates, coordinates)
def test_kph_certificate_round_trips(x: int, y: int) -> None:
    """Any point comes back out of its KPH certificate."""
    point = PublicPoint(x=x, y=y)
    assert parse_kph_certificate(build_kph_certificate(point)) == point


entries = st.builds(
    ParameterEntry,
    tag=st.integers(min_value=0, max_value=0xFFFF),
    index=st.integers(min_value=0, max_value=0xFFFFFFFF),
    data=st.binary(max_size=100),
)


@given(st.lists(entries, max_size=6))
def test_parameter_map_round_trips(parameter_entries: list[ParameterEntry]) -> None:
    """Any list of entries decodes to itself."""
    assert decode_parameter_map(encode_parameter_map(parameter_entries)) == parameter_entries
