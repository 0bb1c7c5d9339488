"""SPKI, RecipientInfo and OA2 certificate formats (TKE-REFERENCE §3.9, §5, §6.5)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signserv.contract import PublicPoint
from signserv.tke.wire import MalformedTKEMessage
from signserv.tke.wire.oa_certificate import build_oa2_certificate, parse_oa2_certificate
from signserv.tke.wire.recipient_info import RecipientInfo, parse_recipient_info
from signserv.tke.wire.spki import encode_p521_spki, parse_p521_spki

coordinates = st.integers(min_value=1, max_value=(1 << 521) - 1)
points = st.builds(PublicPoint, x=coordinates, y=coordinates)
scalars = st.integers(min_value=1, max_value=(1 << 521) - 1)


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


@given(points)
def test_spki_round_trips(point: PublicPoint) -> None:
    """Any point comes back out of its SPKI."""
    assert parse_p521_spki(encode_p521_spki(point)) == point


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
    assert (parsed.point, parsed.subject_ski, parsed.signer_ski, parsed.signature) == (
        point,
        subject,
        signer,
        (r, s),
    )
    assert parsed.body == certificate[:464]
