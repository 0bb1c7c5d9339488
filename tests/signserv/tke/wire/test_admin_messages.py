"""xcpAdminBlk, xcpAdminReq, xcpAdminRsp, xcpAdminRspBlk (TKE-REFERENCE §3.7, §4.3, vector 12)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signserv.tke.wire import (
    AdminBlock,
    AdminRequest,
    AdminResponse,
    AdminResponseBlock,
    CommandId,
    MalformedTKEMessage,
    decode_admin_block,
    decode_admin_request,
    decode_admin_response,
    decode_admin_response_block,
    domain_id,
)

u32s = st.integers(min_value=0, max_value=0xFFFFFFFF)
blobs = st.binary(max_size=200)

GEN_WK_BLOCK = bytes.fromhex(
    "3036040400 00000a0408 0000000f01020304"
    "0410393341414243313200000000000000 00"
    "041000000000000000000000000000000005"
    "0400".replace(" ", "")
)


def test_generate_random_wk_block_matches_section_4_3() -> None:
    """§4.3 example: domain 15, instance 01020304, module 93AABC12+8 zero bytes, counter 5."""
    block = AdminBlock(
        command=CommandId.GENERATE_RANDOM_WK,
        domain_id=domain_id(15, bytes.fromhex("01020304")),
        module_id=b"93AABC12" + bytes(8),
        counter=(5).to_bytes(16, "big"),
    )
    assert block.encode() == GEN_WK_BLOCK


def test_unsigned_request_matches_vector_12() -> None:
    """Vector 12: the request with no signatures ends in an empty OCTET STRING."""
    request = AdminRequest(domain=15, block=GEN_WK_BLOCK).encode()
    assert request == bytes.fromhex("304804040001002904040000000f0438") + GEN_WK_BLOCK + b"\x04\x00"


def test_query_block_keeps_empty_fields() -> None:
    """§9 item 8: moduleId, counter and cmdInput of a query are still written as 04 00."""
    block = AdminBlock(CommandId.QUERY_DOMAIN_ATTRIBUTES, domain_id(15, bytes(4))).encode()
    assert block == bytes.fromhex("301604040001000a04080000000f00000000040004000400")


def test_refused_response_block_reason_is_first_four_output_bytes() -> None:
    """§3.7: the reason code of an inner refusal is u32 of output[0:4]."""
    block = AdminResponseBlock(2, bytes(8), bytes(16), bytes(16), 256, (38).to_bytes(4, "big"))
    assert block.reason == 38
    assert AdminResponseBlock(2, bytes(8), bytes(16), bytes(16), 208).reason is None


def test_early_error_response_has_three_elements() -> None:
    """§3.7: an outer error carries no block and no OA signature."""
    encoded = AdminResponse(domain=15, return_value=192).encode()
    assert decode_admin_response(encoded) == AdminResponse(domain=15, return_value=192)
    assert encoded.count(b"\x04\x04") == 3


@pytest.mark.parametrize(
    "hostile_request",
    [
        b"",
        bytes.fromhex("3000"),
        AdminRequest(15, b"blk").encode().replace(b"\x00\x01\x00\x29", b"\x00\x01\x00\x26"),
        AdminRequest(15, b"blk").encode() + b"\x00",
        bytes.fromhex("300c")
        + bytes.fromhex("040400010029")
        + bytes.fromhex("020100")
        + b"\x04\x00",
    ],
    ids=["empty", "no_elements", "wrong_function", "trailing_byte", "integer_instead_of_octets"],
)
def test_malformed_requests_are_refused(hostile_request: bytes) -> None:
    """A request that is not four OCTET STRINGs with fnid 00010029 raises."""
    with pytest.raises(MalformedTKEMessage):
        decode_admin_request(hostile_request)


@given(u32s, st.binary(min_size=8, max_size=8), blobs, blobs, blobs)
def test_block_round_trips(
    command: int, domain: bytes, module: bytes, counter: bytes, data: bytes
) -> None:
    """Any block decodes to itself."""
    block = AdminBlock(command, domain, module, counter, data)
    assert decode_admin_block(block.encode()) == block


@given(u32s, blobs, blobs)
def test_request_round_trips(domain: int, block: bytes, signer_infos: bytes) -> None:
    """Any request decodes to itself, the block bytes untouched."""
    request = AdminRequest(domain, block, signer_infos)
    assert decode_admin_request(request.encode()) == request


@given(u32s, blobs, blobs, blobs, blobs, u32s, blobs)
def test_response_block_round_trips(
    command: int, domain: bytes, module: bytes, counter: bytes, output: bytes, rc: int, _: bytes
) -> None:
    """Any response block decodes to itself."""
    block = AdminResponseBlock(command, domain, module, counter, rc, output)
    assert decode_admin_response_block(block.encode()) == block


@given(u32s, u32s, st.none() | blobs, blobs)
def test_response_round_trips(domain: int, value: int, block: bytes | None, oa: bytes) -> None:
    """Both response forms decode to themselves."""
    response = AdminResponse(domain, value, block, oa if block is not None else b"")
    assert decode_admin_response(response.encode()) == response
