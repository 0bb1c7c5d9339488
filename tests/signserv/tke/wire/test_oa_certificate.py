"""OA certificates in the three layouts the SDK reads (TKE-REFERENCE §3.9).

Each layout is built here byte by byte at the offsets the SDK uses, signed with a real
P-521 key, and read back: the point, the signer and subject, and a body the signature
verifies over.
"""

from __future__ import annotations

import secrets

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from signserv.contract import PublicPoint
from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire.oa_certificate import (
    OA3_CERTIFICATE_BYTES,
    OA3_MINIBOOT_CERTIFICATE_BYTES,
    OAFormat,
    build_oa2_certificate,
    oa_format,
    parse_oa_certificate,
)

SUBJECT = bytes(range(32))
SIGNER = bytes(range(100, 132))


def new_key() -> tuple[ec.EllipticCurvePrivateKey, PublicPoint]:
    key = ec.generate_private_key(ec.SECP521R1())
    numbers = key.public_key().public_numbers()
    return key, PublicPoint(numbers.x, numbers.y)


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> tuple[int, int]:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA512())))
    return r, s


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def test_oa2_is_read_by_the_section_lengths_in_its_header() -> None:
    """Metadata with 16 bytes of OA info and no aux section: the SPKI, SKIs and signature
    are found where the header's lengths put them, not at the 672-byte layout's offsets."""
    parent, parent_point = new_key()
    _, point = new_key()
    standard = build_oa2_certificate(point, SUBJECT, SIGNER, lambda body: (1, 1))
    metadata = bytearray(standard[40:213])  # 173 declared bytes
    metadata[172] = 16  # OA info length
    oa_info = secrets.token_bytes(16)
    lengths = (4, 173 + 16, 0, 158, 207)
    header = bytes([0x45, 0, 0, 5]) + u32(0) + b"".join(map(u32, lengths)) + bytes(4)
    body = header + standard[32:40] + bytes(metadata) + oa_info + bytes(3) + standard[304:464]
    r, s = sign(parent, body)
    signer_info = bytearray(standard[464:])
    signer_info[73:139] = r.to_bytes(66, "big")
    signer_info[141:207] = s.to_bytes(66, "big")
    certificate = body + bytes(signer_info)

    parsed = parse_oa_certificate(certificate)
    assert parsed.format is OAFormat.OA2
    assert (parsed.point, parsed.subject_id, parsed.signer_id) == (point, SUBJECT, SIGNER)
    assert parsed.body == body
    parent_point.verify_sha512(parsed.signature, parsed.body)


def test_oa2_whose_sections_overrun_the_data_is_malformed() -> None:
    """A header promising more bytes than there are is refused with the section named."""
    _, point = new_key()
    certificate = build_oa2_certificate(point, SUBJECT, SIGNER, lambda body: (1, 1))
    with pytest.raises(MalformedTKEMessage, match="reading the SignerInfo"):
        parse_oa_certificate(certificate[:600])


def oa3_certificate(
    miniboot: bool, parent: ec.EllipticCurvePrivateKey, point: PublicPoint
) -> tuple[bytes, bytes]:
    """A CEX8 certificate of either length at the SDK's offsets, and its ECC-signed body."""
    metadata, aux = secrets.token_bytes(95), secrets.token_bytes(83)
    der4 = bytes(5 if miniboot else 7)
    key_info = bytes(23) + SUBJECT + bytes(2 if miniboot else 82)
    spki = bytes(25) + point.uncompressed()
    signed = metadata + aux + der4 + key_info + spki
    r, s = sign(parent, signed)
    signer_info = (
        bytes(9) + SIGNER + bytes(13) + der4 + key_info + spki
        + bytes(20) + r.to_bytes(66, "big") + bytes(2) + s.to_bytes(66, "big")
    )  # fmt: skip
    total = OA3_MINIBOOT_CERTIFICATE_BYTES if miniboot else OA3_CERTIFICATE_BYTES
    certificate = bytes(4) + metadata + aux + signer_info
    return certificate + secrets.token_bytes(total - len(certificate)), signed


@pytest.mark.parametrize("miniboot", [False, True], ids=["segment3_7973", "miniboot_7810"])
def test_cex8_oa3_certificates_are_read_as_the_sdk_reads_them(miniboot: bool) -> None:
    """Both OA3 lengths: the ECC key, SKIs and the ECC signature over its body."""
    parent, parent_point = new_key()
    _, point = new_key()
    certificate, signed = oa3_certificate(miniboot, parent, point)
    assert oa_format(certificate) is OAFormat.OA3
    parsed = parse_oa_certificate(certificate)
    assert (parsed.point, parsed.subject_id, parsed.signer_id) == (point, SUBJECT, SIGNER)
    assert parsed.body == signed
    parent_point.verify_sha512(parsed.signature, parsed.body)


def cex5_certificate(
    parent: ec.EllipticCurvePrivateKey, point: PublicPoint, *, key_type: int = 2
) -> bytes:
    """A CEX5 OA certificate: header, body with its public key, signature, by offsets."""
    q = point.uncompressed()
    public_key = bytes(20) + bytes([0, 0]) + (521).to_bytes(2, "big") + len(q).to_bytes(2, "big")
    public_key += q
    name = bytes(4) + (0x9000).to_bytes(2, "big") + (3).to_bytes(2, "big")
    parent_name = b"PARENT01"
    body = (
        bytes(4) + u32(key_type) + u32(72 - 8) + u32(len(public_key))
        + bytes(36) + name + bytes(4) + parent_name + public_key
    )  # fmt: skip
    r, s = sign(parent, body)
    signature = bytes(8) + r.to_bytes(66, "big") + s.to_bytes(66, "big")
    body_offset = 52 - 8
    signature_offset = 52 + len(body) - 16
    header = (
        bytes(4) + u32(1) + u32(body_offset) + u32(len(body))
        + u32(signature_offset) + u32(len(signature)) + bytes(28)
    )  # fmt: skip
    return header + body + signature


def test_cex5_oa_certificates_are_read_as_the_sdk_reads_them() -> None:
    """Header offsets to the body and signature; names in place of SKIs; a root-signed name."""
    parent, parent_point = new_key()
    _, point = new_key()
    certificate = cex5_certificate(parent, point)
    assert oa_format(certificate) is OAFormat.CEX5
    parsed = parse_oa_certificate(certificate)
    assert parsed.point == point
    assert parsed.signer_id == b"PARENT01"
    assert parsed.cex5_root_signed
    parent_point.verify_sha512(parsed.signature, parsed.body)


def test_cex5_certificate_with_an_rsa_key_is_refused_with_the_sdks_text() -> None:
    parent, _ = new_key()
    _, point = new_key()
    with pytest.raises(MalformedTKEMessage, match="RSA public key"):
        parse_oa_certificate(cex5_certificate(parent, point, key_type=0))


def test_format_is_detected_by_length_then_first_byte() -> None:
    """§3.9: 7973 or 7810 bytes is OA3 whatever the first byte; else 0x45 is OA2."""
    assert oa_format(b"\x45" + bytes(7972)) is OAFormat.OA3
    assert oa_format(b"\x45" + bytes(671)) is OAFormat.OA2
    assert oa_format(b"\x00" + bytes(671)) is OAFormat.CEX5
    with pytest.raises(MalformedTKEMessage, match="empty"):
        oa_format(b"")
