"""SignerInfo encoding and parsing (TKE-REFERENCE §4.2, §10 vector 11)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signserv.contract import PublicPoint
from signserv.tke.wire import (
    MalformedSignerInfo,
    SignerInfo,
    encode_signer_infos,
    oids,
    parse_signer_infos,
)

skis = st.binary(min_size=32, max_size=32)
signatures = st.binary(max_size=300)
signer_infos = st.builds(SignerInfo, ski=skis, signature=signatures)


def test_signer_info_for_generator_has_vector_11_shape(generator_point: PublicPoint) -> None:
    """Vector 11: version 3, [0] SKI, sha512+NULL, ecdsa-with-SHA512+NULL, OCTET STRING 81 8A."""
    signature = bytes.fromhex("308187") + bytes(0x87)
    encoded = SignerInfo(ski=generator_point.ski(), signature=signature).encode()
    expected = (
        bytes.fromhex("3081cf020103")
        + bytes.fromhex("8020")
        + bytes.fromhex("866323b2e29c6eddaba0acbdb76df7b5bf56518399b1b4b0833768297e0d68f0")
        + bytes.fromhex("300d060960864801650304020305 00".replace(" ", ""))
        + bytes.fromhex("300c06082a8648ce3d0403040500")
        + bytes.fromhex("04818a")
        + signature
    )
    assert encoded == expected


def test_two_signers_are_two_concatenated_sequences() -> None:
    """Vector 11: no SET wrapper; the parser returns them in order."""
    first = SignerInfo(ski=b"\x01" * 32, signature=b"first")
    second = SignerInfo(ski=b"\x02" * 32, signature=b"second")
    concatenated = encode_signer_infos([first, second])
    assert concatenated == first.encode() + second.encode()
    assert parse_signer_infos(concatenated) == [first, second]


def test_no_signers_is_empty() -> None:
    """§9 item 7: zero signatures is an empty string, parsed as an empty list."""
    assert encode_signer_infos([]) == b""
    assert parse_signer_infos(b"") == []


def test_algorithm_identifiers_without_null_are_accepted() -> None:
    """OA responses may omit the NULL parameters; only the OIDs matter (§3.8)."""
    encoded = (
        bytes.fromhex("3061020103")
        + bytes.fromhex("8020")
        + bytes(32)
        + bytes.fromhex("300b")
        + oids.SHA512
        + bytes.fromhex("300a")
        + oids.ECDSA_WITH_SHA512
        + bytes.fromhex("0418")
        + bytes(24)
    )
    encoded = bytes([0x30, len(encoded) - 2]) + encoded[2:]
    (parsed,) = parse_signer_infos(encoded)
    assert parsed.digest_algorithm == oids.SHA512
    assert parsed.signature_algorithm == oids.ECDSA_WITH_SHA512


def _valid() -> bytes:
    return SignerInfo(ski=bytes(32), signature=b"sig").encode()


@pytest.mark.parametrize(
    "hostile_signer_info",
    [
        b"\x30",
        _valid()[:-1],
        _valid().replace(b"\x02\x01\x03", b"\x02\x01\x01", 1),
        _valid().replace(b"\x80\x20", b"\x81\x20", 1),
        b"\x04\x00",
        _valid() + b"\x00",
    ],
    ids=[
        "truncated_header",
        "truncated_body",
        "version_1",
        "ski_wrong_tag",
        "not_a_sequence",
        "trailing_byte",
    ],
)
def test_malformed_signer_infos_are_refused(hostile_signer_info: bytes) -> None:
    """Shapes other than §4.2 raise MalformedSignerInfo."""
    with pytest.raises(MalformedSignerInfo):
        parse_signer_infos(hostile_signer_info)


@given(st.lists(signer_infos, max_size=5))
def test_encode_then_parse_round_trips(infos: list[SignerInfo]) -> None:
    """Any list of SignerInfos survives concatenation and splitting."""
    assert parse_signer_infos(encode_signer_infos(infos)) == infos
