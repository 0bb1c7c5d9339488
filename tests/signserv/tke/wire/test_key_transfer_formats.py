"""SPKI, RecipientInfo and OA2 certificate formats (TKE-REFERENCE §3.9, §5, §6.5)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signserv import der
from signserv.contract import P521_GROUP_ORDER, PointNotOnCurve, PublicPoint
from signserv.tke.wire import MalformedTKEMessage, oids
from signserv.tke.wire.key_transport import unwrap_key
from signserv.tke.wire.oa_certificate import build_oa2_certificate, parse_oa2_certificate
from signserv.tke.wire.raw_key_material import public_point_of
from signserv.tke.wire.recipient_info import RecipientInfo, parse_recipient_info
from signserv.tke.wire.spki import encode_p521_spki, parse_p521_spki

coordinates = st.integers(min_value=1, max_value=(1 << 521) - 1)
points = st.builds(PublicPoint, x=coordinates, y=coordinates)
scalars = st.integers(min_value=1, max_value=P521_GROUP_ORDER - 1)


def test_importer_spki_bit_string_is_134_bytes(generator_point: PublicPoint) -> None:
    """§9 item 16: the SDK needs exactly 00 04 X Y in the BIT STRING."""
    spki = encode_p521_spki(generator_point)
    assert spki[:3] == bytes.fromhex("30819b") and spki[21:25] == bytes.fromhex("03818600")


@pytest.mark.parametrize(
    "hostile_spki",
    [b"", bytes.fromhex("3000"), bytes.fromhex("30819b") + bytes(155)],
    ids=["empty", "empty_sequence", "zeros"],
)
def test_malformed_spki_is_refused(hostile_spki: bytes) -> None:
    """Anything but a P-521 SPKI raises."""
    with pytest.raises(MalformedTKEMessage):
        parse_p521_spki(hostile_spki)


def test_oa2_certificate_layout(generator_point: PublicPoint) -> None:
    """672 bytes, marker 0x45, five sections, SKIs and point at the fixed offsets (§3.9)."""
    certificate = build_oa2_certificate(
        generator_point, b"\x11" * 32, b"\x22" * 32, lambda body: (1, 2)
    )
    assert len(certificate) == 672 and certificate[0] == 0x45 and certificate[3] == 5
    assert certificate[40 + 87 : 40 + 119] == b"\x11" * 32
    assert certificate[40 + 121 : 40 + 153] == b"\x22" * 32
    assert certificate[304 + 25 : 304 + 158] == generator_point.uncompressed()
    assert certificate[464:467] == bytes.fromhex("3081cc")


VECTOR_GENERATOR_SPKI_HEX = (
    "30819b301006072a8648ce3d020106052b81040023038186000400c6858e06b70404e9cd9e3ecb662395b4429c"
    "648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5"
    "bd66011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c5"
    "50b9013fad0761353c7086a272c24088be94769fd16650"
)


def test_spki_of_the_generator_keeps_its_bytes(generator_point: PublicPoint) -> None:
    """The SPKI cryptography writes is the one the TLV-by-TLV encoder wrote (§10 vector 1's key)."""
    assert encode_p521_spki(generator_point).hex() == VECTOR_GENERATOR_SPKI_HEX


@settings(max_examples=25)
@given(scalars)
def test_spki_is_the_hand_built_sequence(scalar: int) -> None:
    """SEQUENCE{SEQUENCE{ecPublicKey, secp521r1}, BIT STRING 00 04 X Y}, byte for byte."""
    point = public_point_of(scalar)
    hand_built = der.encode_sequence(
        der.encode_sequence(oids.EC_PUBLIC_KEY, oids.SECP521R1),
        der.encode_tlv(der.TAG_BIT_STRING, b"\x00" + point.uncompressed()),
    )
    assert encode_p521_spki(point) == hand_built
    assert parse_p521_spki(hand_built) == point


def test_spki_of_a_point_off_the_curve_is_refused() -> None:
    """bogus_point (1, 1) is not a P-521 key, so it has no SubjectPublicKeyInfo."""
    with pytest.raises(PointNotOnCurve):
        encode_p521_spki(PublicPoint(x=1, y=1))


@given(points)
def test_spki_parsing_reads_any_point(point: PublicPoint) -> None:
    """Parsing does not check the curve (the SDK does not): any 66-byte X and Y come back."""
    bit_string = der.encode_tlv(der.TAG_BIT_STRING, b"\x00" + point.uncompressed())
    algorithm = der.encode_sequence(oids.EC_PUBLIC_KEY, oids.SECP521R1)
    assert parse_p521_spki(der.encode_sequence(algorithm, bit_string)) == point


# Key bytes(range(32)) wrapped by ephemeral scalar 3 for importer scalar 2 with ukm bytes(range(40)),
# its KEK made by the former hand-written X9.63 round: SHA-256(Z || 00000001 || SharedInfo).
VECTOR_WRAPPED_KEY_HEX = (
    "18be83ba082a00e7d780952fb9e1c921ca999864c235a296befbdee1f47375425346e4c5b334da92"
)


def test_key_wrapped_by_the_hand_written_kdf_still_unwraps() -> None:
    """cryptography's X963KDF derives the same KEK, so a key part wrapped before still opens."""
    recipient_info = RecipientInfo(
        originator=public_point_of(3),
        ukm=bytes(range(40)),
        recipient_ski=public_point_of(2).ski(),
        encrypted_key=bytes.fromhex(VECTOR_WRAPPED_KEY_HEX),
    )
    assert unwrap_key(2, recipient_info) == bytes(range(32))


@given(
    points,
    st.binary(min_size=40, max_size=40),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=40, max_size=40),
)
def test_recipient_info_round_trips(point: PublicPoint, ukm: bytes, ski: bytes, key: bytes) -> None:
    """Any RecipientInfo decodes to itself."""
    recipient_info = RecipientInfo(point, ukm, ski, key)
    assert parse_recipient_info(recipient_info.encode()) == recipient_info


@settings(max_examples=25)
@given(
    points,
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    scalars,
    scalars,
)
def test_oa2_certificate_round_trips(
    point: PublicPoint, subject: bytes, signer: bytes, r: int, s: int
) -> None:
    """Any point, SKIs and signature come back out of an OA2 certificate."""
    certificate = build_oa2_certificate(point, subject, signer, lambda body: (r, s))
    parsed = parse_oa2_certificate(certificate)
    assert (parsed.point, parsed.subject_id, parsed.signer_id, parsed.signature) == (
        point,
        subject,
        signer,
        (r, s),
    )
    assert parsed.body == certificate[:464]
