"""Admin certificates: template, name rules, assembly, lenient parsing (TKE-REFERENCE §2)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signserv.contract import PointNotOnCurve, PublicPoint
from signserv.tke.wire import (
    AdministratorNameTooLong,
    MalformedAdminCertificate,
    assemble_admin_certificate,
    build_admin_tbs,
    encode_admin_name,
    parse_admin_certificate,
)
from signserv.tke.wire.raw_key_material import public_point_of

VECTOR_8_TBS = bytes.fromhex(
    "30820195a003020102020100300a06082a8648ce3d0403043046311b3019060355040b1312544b452041646d696e"
    "697374726174696f6e312730250603550403131e61646d696e312020202020202020202020202020202020202020"
    "202020203022180f32303030303130313030303030305a180f32313030313233313233353935395a3046311b3019"
    "060355040b1312544b452041646d696e697374726174696f6e312730250603550403131e61646d696e3120202020"
    "202020202020202020202020202020202020202030819b301006072a8648ce3d020106052b810400230381860004"
    "00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127"
    "a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b4468"
    "17afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650a32d302b3029"
    "0603551d0e04220420866323b2e29c6eddaba0acbdb76df7b5bf56518399b1b4b0833768297e0d68f0"
)

scalars = st.integers(min_value=1, max_value=1 << 520)  # below the P-521 group order
names = st.text(min_size=0, max_size=30).filter(lambda name: len(name.encode()) <= 30)


def test_tbs_for_generator_named_admin1_matches_vector_8(generator_point: PublicPoint) -> None:
    """Vector 8: 409 bytes, byte for byte, with the documented SHA-256."""
    tbs = build_admin_tbs("admin1", generator_point)
    assert tbs == VECTOR_8_TBS
    assert hashlib.sha256(tbs).hexdigest() == (
        "b6cfea1675e956070b3a6ee06cc2dcef8928a95758ae270b17d4781f788300c8"
    )


@pytest.mark.parametrize("name", ["a" * 30, "é" * 15])
def test_names_of_30_bytes_are_accepted(name: str) -> None:
    """Vector 10: the limit is 30 bytes, not 30 characters."""
    assert len(encode_admin_name(name)) == 30


@pytest.mark.parametrize("name", ["a" * 31, "é" * 16])
def test_names_over_30_bytes_are_refused(name: str) -> None:
    """Vector 10: 31 ASCII bytes and 16 times 'é' (32 bytes) are too long."""
    with pytest.raises(AdministratorNameTooLong):
        encode_admin_name(name)


def test_name_is_space_padded_and_read_back_trimmed(generator_point: PublicPoint) -> None:
    """Vector 10: 'Name With Spaces' is padded to 30 bytes and reads back trimmed."""
    assert encode_admin_name("Name With Spaces") == b"Name With Spaces" + b" " * 14
    certificate = assemble_admin_certificate(
        build_admin_tbs("Name With Spaces", generator_point), bytes(139)
    )
    assert parse_admin_certificate(certificate).name == "Name With Spaces"


def test_certificate_with_139_byte_signature_is_568_bytes(generator_point: PublicPoint) -> None:
    """§2.4: TBS, ecdsa-with-SHA512 without NULL, BIT STRING 00||signature."""
    certificate = assemble_admin_certificate(build_admin_tbs("admin1", generator_point), bytes(139))
    assert len(certificate) == 568
    assert certificate[:4] == bytes.fromhex("30820234")
    assert certificate[413:425] == bytes.fromhex("300a06082a8648ce3d040304")


def test_parsed_certificate_gives_point_and_matching_ski(generator_point: PublicPoint) -> None:
    """The parser returns the point; its SKI equals the extension for a well-made certificate."""
    parsed = parse_admin_certificate(
        assemble_admin_certificate(build_admin_tbs("admin1", generator_point), b"\x30\x00")
    )
    assert parsed.point == generator_point
    assert parsed.ski == parsed.ski_extension == generator_point.ski()


@pytest.mark.parametrize(
    "not_a_certificate",
    [b"", b"\x30\x00", b"\x04\x03abc", VECTOR_8_TBS, VECTOR_8_TBS[:200]],
    ids=["empty", "empty_sequence", "octet_string", "bare_tbs", "truncated_tbs"],
)
def test_unreadable_certificates_are_refused(not_a_certificate: bytes) -> None:
    """Anything that is not a certificate raises, never returns a half-parsed name."""
    with pytest.raises(MalformedAdminCertificate):
        parse_admin_certificate(not_a_certificate)


@given(name=names, scalar=scalars, signature=st.binary(max_size=150))
def test_build_then_parse_round_trips(name: str, scalar: int, signature: bytes) -> None:
    """Any name of up to 30 bytes and any P-521 key come back (name trimmed, §2.3)."""
    point = public_point_of(scalar)
    tbs = build_admin_tbs(name, point)
    assert len(tbs) == 409
    parsed = parse_admin_certificate(assemble_admin_certificate(tbs, signature))
    assert parsed.point == point
    assert parsed.ski_extension == point.ski()
    assert parsed.name == name.encode().decode("utf-8").strip()


def test_certificate_for_a_point_off_the_curve_is_refused() -> None:
    """bogus_point (1, 1): no certificate is built for a key that cannot verify anything."""
    with pytest.raises(PointNotOnCurve):
        build_admin_tbs("admin1", PublicPoint(x=1, y=1))
