"""The wire formats against TKE-REFERENCE §10 items 1-7, and property tests of every pair."""

from __future__ import annotations

import base64
import contextlib
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from signserv import contract, der
from signserv.contract import (
    P521_GROUP_ORDER,
    MalformedPublicKey,
    MalformedSignature,
    MalformedSignRequest,
    PublicPoint,
)

VECTOR_1_DER_HEX = (
    "308188024200c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe759"
    "28fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd660242011839296a789a3bc0045c8a5fb42c7d1bd998"
    "f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650"
)
VECTOR_1_BASE64 = (
    "MIGIAkIAxoWOBrcEBOnNnj7LZiOVtEKcZIE5BT+1Ifgor2BrTT26oUted+/nWSj+HcEnov+o3jNIs8GFakKb+X5+McLlvWY"
    "CQgEYOSlqeJo7wARcil+0LH0b2Zj1RElXm0RoF6+9Fyc+ZiyX7nKZXvQmQMVQuQE/rQdhNTxwhqJywkCIvpR2n9FmUA=="
)
PROBE_INPUT_BASE64 = "A" * 134 + "=="


def point_of(scalar: int) -> PublicPoint:
    numbers = ec.derive_private_key(scalar, ec.SECP521R1()).public_key().public_numbers()
    return PublicPoint(numbers.x, numbers.y)


def test_vector_1_generator_public_key_encoding_and_ski() -> None:
    """d = 1: X has 65 significant bytes starting C6, so it needs a 00 sign byte."""
    point = point_of(1)
    encoded = contract.encode_public_key(point)
    assert encoded.hex() == VECTOR_1_DER_HEX
    assert contract.b64encode(encoded) == VECTOR_1_BASE64
    assert point.uncompressed()[:3] == bytes.fromhex("0400c6")
    assert point.ski_hex() == "866323b2e29c6eddaba0acbdb76df7b5bf56518399b1b4b0833768297e0d68f0"
    assert contract.decode_public_key(encoded) == point


def test_vector_2_short_x_is_minimal_and_padded_x_is_rejected() -> None:
    """d = 273: X has 64 significant bytes; the 66-byte padded form is not minimal DER."""
    point = point_of(273)
    assert point.ski_hex() == "03d97704c59ed66c2ac814afe67767c891a0281edc800bf275aa99a848dafa34"
    encoded = contract.encode_public_key(point)
    assert contract.decode_public_key(encoded) == point
    padded = der.encode_sequence(
        der.encode_tlv(der.TAG_INTEGER, point.x.to_bytes(66, "big")), der.encode_integer(point.y)
    )
    assert padded[3:7].hex() == "02420000"  # 30 81 LL, then X padded to 66 bytes
    with pytest.raises(MalformedPublicKey, match="minimal"):
        contract.decode_public_key(padded)


def test_vector_3_short_y_ski() -> None:
    assert (
        point_of(73).ski_hex() == "4f8ca8097cc07f1b7b2c0a6bd58a95037bd0bd0e8839af97caca6ba71694d958"
    )


def test_vector_4_spki_instead_of_sequence_xy_is_rejected() -> None:
    """bogus_spki_pubkey: what most libraries export by default."""
    key = ec.derive_private_key(1, ec.SECP521R1()).public_key()
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(MalformedPublicKey, match="SPKI"):
        contract.decode_public_key(spki)


def test_vector_4_raw_uncompressed_point_is_rejected() -> None:
    with pytest.raises(MalformedPublicKey, match="raw"):
        contract.decode_public_key(point_of(1).uncompressed())


def test_vector_4_coordinate_of_67_bytes_is_rejected() -> None:
    too_long = PublicPoint(x=1 << (67 * 8 - 2), y=5)
    with pytest.raises(MalformedPublicKey, match=r"[Oo]nly P-521"):
        contract.decode_public_key(contract.encode_public_key(too_long))


def test_vector_4_trailing_bytes_after_the_sequence_are_accepted_like_go() -> None:
    encoded = bytes.fromhex(VECTOR_1_DER_HEX) + b"\x00\x01garbage"
    assert contract.decode_public_key(encoded) == point_of(1)


@pytest.mark.parametrize(
    "text",
    [VECTOR_1_BASE64.replace("+", "-").replace("/", "_"), VECTOR_1_BASE64.rstrip("="), "@@@@", "é"],
)
def test_vector_4_non_standard_base64_is_rejected(text: str) -> None:
    with pytest.raises(contract.NonStandardBase64):
        contract.b64decode_strict(text, what="publickey")


def test_vector_5_exact_sign_request_body() -> None:
    assert contract.build_sign_request_body(b"hello") == (
        b'{"hash_algorithm":"sha2-512","input":"aGVsbG8="}'
    )


def test_vector_6_probe_body_is_base64_of_100_zero_bytes() -> None:
    body = contract.build_sign_request_body(bytes(100))
    assert body == b'{"hash_algorithm":"sha2-512","input":"' + PROBE_INPUT_BASE64.encode() + b'"}'
    assert contract.parse_sign_request(body) == bytes(100)


def test_vector_7_der_signature_round_trip_and_verification() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    signature = key.sign(b"hello", ec.ECDSA(hashes.SHA512()))
    assert contract.decode_signature(signature) == decode_dss_signature(signature)
    r, s = contract.decode_signature(signature)
    assert contract.encode_signature(r, s) == signature


def test_raw_r_s_concatenation_is_not_a_signature() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    r, s = decode_dss_signature(key.sign(b"x", ec.ECDSA(hashes.SHA512())))
    with pytest.raises(MalformedSignature):
        contract.decode_signature(r.to_bytes(66, "big") + s.to_bytes(66, "big"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1,2]", "body"),
        (b'{"input":"aGVsbG8="}', "hash_algorithm"),
        (b'{"hash_algorithm":"sha2-256","input":"aGVsbG8="}', "hash_algorithm"),
        (b'{"hash_algorithm":"sha2-512"}', "input"),
        (b'{"hash_algorithm":"sha2-512","input":5}', "input"),
        (b'{"hash_algorithm":"sha2-512","input":null}', "input"),
        (b'{"hash_algorithm":"sha2-512","input":"not base64!"}', "input"),
        (b'{"hash_algorithm":"sha2-512","input":"aGVsbG8"}', "input"),
        (b'{"hash_algorithm":"sha2-512","inputs":"-_-_"}', "inputs"),
        (b'{"hash_algorithm":"sha2-512","input":"aGVsbG8=","inputs":"eA=="}', "input"),
        (b'{"hash_algorithm":"sha2-512","input":"aGVsbG8=","input":"eA=="}', "input"),
        (b"\xff\xfe", "body"),
    ],
)
def test_bad_sign_requests_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(MalformedSignRequest) as refused:
        contract.parse_sign_request(body)
    assert refused.value.field == field
    assert field in str(refused.value) or field == "body"


def test_an_empty_input_is_an_empty_message_to_sign() -> None:
    assert contract.parse_sign_request(b'{"hash_algorithm":"sha2-512","input":""}') == b""


def test_inputs_is_accepted_as_an_alias_of_input() -> None:
    assert (
        contract.parse_sign_request(b'{"hash_algorithm":"sha2-512","inputs":"aGVsbG8="}')
        == b"hello"
    )
    both = b'{"hash_algorithm":"sha2-512","input":"aGVsbG8=","inputs":"aGVsbG8="}'
    assert contract.parse_sign_request(both) == b"hello"


coordinates = st.integers(min_value=1, max_value=(1 << 528) - 1)


@given(coordinates, coordinates)
def test_public_key_encoding_round_trips(x: int, y: int) -> None:
    point = PublicPoint(x, y)
    encoded = contract.encode_public_key(point)
    assert contract.decode_public_key(encoded) == point
    assert len(point.ski()) == 32 and point.ski() == hashlib.sha256(point.uncompressed()).digest()


@given(st.integers(1, P521_GROUP_ORDER - 1), st.integers(1, P521_GROUP_ORDER - 1))
def test_signature_encoding_round_trips(r: int, s: int) -> None:
    assert contract.decode_signature(contract.encode_signature(r, s)) == (r, s)


def hand_built_integer_pair(first: int, second: int) -> bytes:
    """SEQUENCE{INTEGER, INTEGER} written TLV by TLV, as the contract encoders once did."""
    return der.encode_sequence(der.encode_integer(first), der.encode_integer(second))


def test_signature_encoding_keeps_its_bytes_at_the_integer_edges() -> None:
    """A one-byte R, a 521-bit S, and INTEGERs that do and do not need a 00 sign byte."""
    assert contract.encode_signature(1, 1 << 520).hex() == ("3047020101024201" + "00" * 65)
    assert contract.encode_signature(0x80, 0x7F).hex() == "30070202008002017f"


@given(coordinates, coordinates)
def test_library_encoders_write_the_hand_built_bytes(first: int, second: int) -> None:
    """cryptography's encoder gives byte for byte what the TLV-by-TLV encoder gave."""
    expected = hand_built_integer_pair(first, second)
    assert contract.encode_signature(first, second) == expected
    assert contract.encode_public_key(PublicPoint(first, second)) == expected


@given(st.binary(min_size=1, max_size=2048))
def test_sign_request_body_round_trips(data: bytes) -> None:
    assert contract.parse_sign_request(contract.build_sign_request_body(data)) == data
    assert base64.b64decode(contract.b64encode(data)) == data


@given(st.binary(max_size=300))
def test_decoders_never_fail_other_than_with_contract_errors(blob: bytes) -> None:
    """Arbitrary bytes: either a parse or a ContractError, never another exception."""
    for decode in (
        contract.decode_public_key,
        contract.decode_signature,
        contract.parse_sign_request,
    ):
        with contextlib.suppress(contract.ContractError):
            decode(blob)


def test_verify_sha512_accepts_the_right_signature_and_names_the_key_otherwise() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    numbers = key.public_key().public_numbers()
    point = PublicPoint(numbers.x, numbers.y)
    signature = decode_dss_signature(key.sign(b"block", ec.ECDSA(hashes.SHA512())))
    point.verify_sha512(signature, b"block")
    with pytest.raises(contract.SignatureMismatch, match=point.ski_hex()):
        point.verify_sha512(signature, b"another block")


def test_point_off_the_curve_is_refused() -> None:
    on_curve = point_of(1)
    with pytest.raises(contract.PointNotOnCurve):
        PublicPoint(on_curve.x, on_curve.y + 1).verifying_key()


@pytest.mark.parametrize(
    ("body", "member"),
    [
        (b' \r\n{"publickey": "AAAA", "extra": 1} trailing', "publickey"),
        (b'{"signature": "AAAA", "note": "\xff"}', "signature"),
    ],
    ids=["whitespace_extra_member_and_trailing_bytes", "invalid_utf8_in_another_member"],
)
def test_answers_are_read_with_the_go_clients_leniencies(body: bytes, member: str) -> None:
    """One JSON value, the rest ignored; invalid UTF-8 becomes U+FFFD as in Go (§1.4)."""
    assert contract.read_answer_member(body, member) == "AAAA"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"", "empty response body"),
        (b" \n", "empty response body"),
        (b"<html>", "response body is not JSON"),
        (b"\x0c{}", "response body is not JSON"),
        (b'["publickey"]', "response body is not a JSON object"),
        (b'{"key": "AAAA"}', "publickey not found"),
        (b'{"publickey": 123}', "publickey is not a string"),
    ],
    ids=["empty", "only_whitespace", "html", "form_feed_first", "array", "missing", "number"],
)
def test_unusable_answers_name_the_problem(body: bytes, complaint: str) -> None:
    """The Go client's texts, without where the answer came from (the caller adds that)."""
    with pytest.raises(contract.UnusableAnswer) as refused:
        contract.read_answer_member(body, "publickey")
    assert str(refused.value) == complaint
