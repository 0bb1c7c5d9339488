"""CPRB, HTPRequest and HTPResponse strings (TKE-REFERENCE §3.4-§3.5, vectors 13-16)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signserv.tke.wire import (
    AdminBlock,
    AdminRequest,
    CommandId,
    Cprb,
    HTPError,
    HTPRequest,
    HTPResponseError,
    MalformedHTPMessage,
    XcpInfoRequest,
    decode_cprb,
    decode_htp_request,
    decode_htp_response,
    domain_id,
    encode_htp_response,
)

PREFIX = (
    "PCI request;XPNUM   ;1;        ;0020040000805434000000000000000F00000000000000000000000000"
)
VECTOR_13 = (
    f"181;{PREFIX}00002A302804040001002904040000000F0418301604040001000A04080000000F00"
    "0000000400040004000400"
)
VECTOR_14 = (
    f"181;{PREFIX}00002A302804040001002904040000000F0418301604040001000204080000000F00"
    "0000000400040004000400"
)
VECTOR_15 = f"149;{PREFIX}00001A301804040001002604040000000F040400000003040400000000"
VECTOR_16 = (
    f"189;{PREFIX}00002E302C04040001002904040000000F041C301A04040001000304080000000000000000"
    "040004000404000000000400"
)


def _admin_query(command: CommandId, block_domain: bytes, command_input: bytes = b"") -> str:
    block = AdminBlock(command, block_domain, command_input=command_input).encode()
    return HTPRequest(1, Cprb(15, AdminRequest(15, block).encode())).encode()


def test_query_domain_attributes_matches_vector_13() -> None:
    """Vector 13: Query Domain Attributes, CM 1, domain 15."""
    assert _admin_query(CommandId.QUERY_DOMAIN_ATTRIBUTES, domain_id(15, bytes(4))) == VECTOR_13


def test_query_domain_admins_matches_vector_14() -> None:
    """Vector 14: Query Domain Admins (list)."""
    assert _admin_query(CommandId.QUERY_DOMAIN_ADMINS, domain_id(15, bytes(4))) == VECTOR_14


def test_query_domain_info_matches_vector_15() -> None:
    """Vector 15: get_xcp_info subtype 3 is not an admin request."""
    assert HTPRequest(1, Cprb(15, XcpInfoRequest(15, 3).encode())).encode() == VECTOR_15


def test_query_device_cert_matches_vector_16() -> None:
    """Vector 16: device cert index 0; the block's domainId is all zero."""
    request = _admin_query(CommandId.QUERY_DEVICE_CERT, bytes(8), bytes(4))
    assert request == VECTOR_16


@pytest.mark.parametrize("vector", [VECTOR_13, VECTOR_14, VECTOR_15, VECTOR_16])
def test_vectors_decode_to_module_1_domain_15(vector: str) -> None:
    """The emulator side reads the CM index and the CPRB domain back."""
    request = decode_htp_request(vector)
    assert (request.crypto_module, request.cprb.domain) == (1, 15)


@pytest.mark.parametrize(
    "hostile_request",
    [
        "",
        VECTOR_13.replace("181", "180", 1),
        VECTOR_13.replace("XPNUM   ", "XPNUM  ", 1),
        VECTOR_13[:-2],
        VECTOR_13[:-1] + "G",
        "38;PCI request;XPNUM   ;1;        ;0020",
    ],
    ids=[
        "empty",
        "wrong_length_prefix",
        "two_spaces_after_xpnum",
        "payload_shorter_than_cprb_says",
        "not_hex",
        "short_cprb",
    ],
)
def test_malformed_requests_are_refused(hostile_request: str) -> None:
    """Anything but §3.4's exact shape raises MalformedHTPMessage."""
    with pytest.raises(MalformedHTPMessage):
        decode_htp_request(hostile_request)


def test_successful_response_has_156_character_errinfo_and_type_00() -> None:
    """§3.5: `<L>;00 00000000 00000000 + spaces;<hex>`, L counting what follows it."""
    response = encode_htp_response(Cprb(15, b"\x01\x02", flags=0))
    length, errinfo, _ = response.split(";")
    assert int(length) == len(response) - len(length)
    assert errinfo == "00" + "0" * 16 + " " * 138
    assert decode_htp_response(response) == Cprb(15, b"\x01\x02", flags=0)


def test_htp_error_is_raised_with_its_codes() -> None:
    """§3.5: an error type other than 00 is an HTP-level error, not a CPRB."""
    response = encode_htp_response(
        Cprb(15, b""), HTPError(" 9", "       8", "      72", text="no such module")
    )
    with pytest.raises(HTPResponseError) as raised:
        decode_htp_response(response)
    assert str(raised.value).splitlines() == [
        "HTPResponse error.",
        "Error message:  Error type: 9, return code: 8, reason code: 72",
        "Program ID:     ",
        "Error location: ",
        "Error text:     no such module",
    ]


def test_htp_error_response_with_only_two_fields_is_an_htp_error() -> None:
    """§3.5: `<L>;<ERRINFO>` without a CPRB is read as the SDK does: "HTPResponse error."."""
    errinfo = HTPError(" 9", "       2", "       0", "TKEHTP", "XPNUM", "bad module").encode()
    with pytest.raises(HTPResponseError) as raised:
        decode_htp_response(f"{len(errinfo) + 1};{errinfo}")
    assert str(raised.value).splitlines() == [
        "HTPResponse error.",
        "Error message:  Crypto Module index is not within the allowed range.",
        "Program ID:     TKEHTP",
        "Error location: XPNUM",
        "Error text:     bad module",
    ]


def test_successful_response_without_cprb_is_malformed() -> None:
    """Error type 00 but no CPRB field: nothing to read (the SDK would panic)."""
    errinfo = HTPError().encode()
    with pytest.raises(MalformedHTPMessage, match="no CPRB"):
        decode_htp_response(f"{len(errinfo) + 1};{errinfo}")


def test_response_cprb_is_request_header_echoed_with_flags_00() -> None:
    """§3.5: the emulator echoes the request header, flags 00, rc 0, new payload length."""
    response = Cprb(15, b"request").as_response(b"answer")
    encoded = response.encode()
    assert encoded[5] == 0 and encoded[16:20] == bytes(4)
    assert int.from_bytes(encoded[28:32], "big") == len(b"answer")


@given(
    module=st.integers(min_value=0, max_value=999),
    domain=st.integers(min_value=0, max_value=0xFFFFFFFF),
    payload=st.binary(max_size=300),
    flags=st.integers(min_value=0, max_value=255),
)
def test_request_round_trips(module: int, domain: int, payload: bytes, flags: int) -> None:
    """Any CPRB in any module survives the HTPRequest string."""
    request = HTPRequest(module, Cprb(domain, payload, flags=flags))
    assert decode_htp_request(request.encode()) == request


@given(
    domain=st.integers(min_value=0, max_value=0xFFFFFFFF),
    payload=st.binary(max_size=300),
    return_code=st.integers(min_value=0, max_value=0xFFFF),
    reason_code=st.integers(min_value=0, max_value=0xFFFF),
)
def test_cprb_round_trips(domain: int, payload: bytes, return_code: int, reason_code: int) -> None:
    """Any CPRB decodes to itself."""
    cprb = Cprb(domain, payload, flags=0, return_code=return_code, reason_code=reason_code)
    assert decode_cprb(cprb.encode()) == cprb
    assert decode_htp_response(encode_htp_response(cprb)) == cprb


columns = st.text(alphabet="0123456789 ", max_size=8)


@given(
    error_type=st.text(alphabet="0123456789 ", min_size=2, max_size=2).filter(lambda t: t != "00"),
    return_code=columns,
    reason_code=columns,
    text=st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters=";"),
        max_size=100,
    ),
)
def test_htp_error_columns_round_trip(
    error_type: str, return_code: str, reason_code: str, text: str
) -> None:
    """Any ERRINFO columns reach the caller, padded to their fixed widths."""
    response = encode_htp_response(
        Cprb(0, b""), HTPError(error_type, return_code, reason_code, text=text)
    )
    with pytest.raises(HTPResponseError) as raised:
        decode_htp_response(response)
    error = raised.value
    assert (error.error_type, error.return_code, error.reason_code, error.text) == (
        error_type,
        return_code.ljust(8),
        reason_code.ljust(8),
        text.ljust(100),
    )
