"""Domain attribute pairs, get_xcp_info and the domain-info payload (§3.7, §5, vector 23)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signserv.tke.wire import (
    AttributeId,
    DomainInfo,
    MalformedTKEMessage,
    XcpInfoRequest,
    XcpInfoResponse,
    decode_attribute_pairs,
    decode_domain_info,
    decode_xcp_info_request,
    decode_xcp_info_response,
    encode_attribute_pairs,
)

u32s = st.integers(min_value=0, max_value=0xFFFFFFFF)


def test_set_attributes_input_matches_vector_23() -> None:
    """Vector 23: sig 2, rev 2, perms 01FF205F, mode 0."""
    pairs = [
        (AttributeId.SIGNATURE_THRESHOLD, 2),
        (AttributeId.REVOCATION_THRESHOLD, 2),
        (AttributeId.PERMISSIONS, 0x01FF205F),
        (AttributeId.MODE, 0),
    ]
    assert encode_attribute_pairs(pairs).hex() == (
        "000000010000000200000002000000020000000301ff205f0000000400000000"
    )


def test_attribute_list_not_multiple_of_8_is_refused() -> None:
    """Pairs are eight bytes each."""
    with pytest.raises(MalformedTKEMessage):
        decode_attribute_pairs(bytes(12))


@pytest.mark.parametrize(
    ("flags", "current", "pending"),
    [
        (0x80000003, "Valid", "Empty"),
        (0x00000000, "Empty", "Empty"),
        (0x00000004, "Empty", "Full Uncommitted"),
        (0x0000000E, "Valid", "Full Committed"),
    ],
)
def test_register_statuses_come_from_flags(flags: int, current: str, pending: str) -> None:
    """Vector 17 / §3.7: the SDK reads byte 71 only."""
    info = decode_domain_info(DomainInfo(domain=15, flags=flags).encode())
    assert (info.current_status, info.pending_status) == (current, pending)


def test_short_domain_info_is_refused() -> None:
    """Domain info is at least 80 bytes."""
    with pytest.raises(MalformedTKEMessage):
        decode_domain_info(bytes(79))


@given(st.lists(st.tuples(u32s, u32s), max_size=8))
def test_attribute_pairs_round_trip(pairs: list[tuple[int, int]]) -> None:
    """Any pairs decode to themselves."""
    assert decode_attribute_pairs(encode_attribute_pairs(pairs)) == pairs


@given(
    u32s,
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    u32s,
    st.integers(min_value=0, max_value=(1 << 64) - 1),
)
def test_domain_info_round_trips(
    domain: int, current: bytes, pending: bytes, flags: int, mode: int
) -> None:
    """Any domain info is 80 bytes and decodes to itself."""
    info = DomainInfo(domain, current, pending, flags, mode)
    assert len(info.encode()) == 80
    assert decode_domain_info(info.encode()) == info


@given(u32s, u32s)
def test_xcp_info_request_round_trips(domain: int, subtype: int) -> None:
    """Any get_xcp_info request decodes to itself."""
    request = XcpInfoRequest(domain, subtype)
    assert decode_xcp_info_request(request.encode()) == request


@given(u32s, u32s, st.binary(max_size=200))
def test_xcp_info_response_round_trips(domain: int, return_code: int, payload: bytes) -> None:
    """Any get_xcp_info response decodes to itself."""
    response = XcpInfoResponse(domain, return_code, payload)
    assert decode_xcp_info_response(response.encode()) == response
