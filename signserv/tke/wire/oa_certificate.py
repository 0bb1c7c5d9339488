"""OA2 outbound-authentication certificates (CEX6/CEX7 layout, TKE-REFERENCE §3.9).

Fixed 672-byte layout: a 464-byte body (header, info, metadata, aux, SPKI) followed by a
SignerInfo whose ECDSA P-521/SHA-512 signature covers the body with 66-byte r and s. The
"DER-ish" sections are not validated by the SDK; only the offsets below matter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from signserv.contract import P521_COORDINATE_BYTES, PublicPoint
from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire import oids

OA2_CERTIFICATE_BYTES = 672
OA2_BODY_BYTES = 464
OA2_FORMAT_MARKER = 0x45
_SECTION_LENGTHS = (4, 173, 83, 158, 207)
_METADATA_OFFSET = 40
_SUBJECT_SKI = slice(_METADATA_OFFSET + 87, _METADATA_OFFSET + 119)
_SIGNER_SKI = slice(_METADATA_OFFSET + 121, _METADATA_OFFSET + 153)
_SPKI_OFFSET = 304
_POINT = slice(_SPKI_OFFSET + 25, _SPKI_OFFSET + 158)
_SIGNATURE_R = slice(OA2_BODY_BYTES + 73, OA2_BODY_BYTES + 139)
_SIGNATURE_S = slice(OA2_BODY_BYTES + 141, OA2_BODY_BYTES + 207)


@dataclass(frozen=True)
class OACertificate:
    """What a client needs from an OA2 certificate: who it is, who signed it, and the signature."""

    subject_ski: bytes
    signer_ski: bytes
    point: PublicPoint
    body: bytes
    signature: tuple[int, int]


def _header() -> bytes:
    lengths = b"".join(length.to_bytes(4, "big") for length in _SECTION_LENGTHS)
    return (
        bytes([OA2_FORMAT_MARKER, 0, 0, len(_SECTION_LENGTHS)])
        + OA2_CERTIFICATE_BYTES.to_bytes(4, "big")
        + lengths
        + bytes(4)
    )


def _metadata(subject_ski: bytes, signer_ski: bytes) -> bytes:
    metadata = (
        bytes.fromhex("3081aa0204") + bytes(4)  # object version
        + bytes.fromhex("0404") + bytes(4)  # flags
        + bytes.fromhex("0408") + bytes(8)  # adapter type
        + bytes.fromhex("040c") + bytes(12)  # adapter id
        + bytes.fromhex("0420") + bytes(32)  # source configuration
        + bytes.fromhex("0204") + bytes(4)
        + bytes.fromhex("0204") + bytes(4)  # key type
        + bytes.fromhex("0420") + subject_ski
        + bytes.fromhex("0420") + signer_ski
        + bytes.fromhex("0410") + bytes(16)  # signing time
        + bytes.fromhex("0400")  # no OA info
    )  # fmt: skip
    return metadata + bytes(3)


def _aux() -> bytes:
    return (
        bytes.fromhex("30510201000440")
        + bytes(64)
        + bytes.fromhex("0404")
        + bytes(4)
        + (bytes.fromhex("0404") + bytes(4) + bytes(5))
    )


def _spki(point: PublicPoint) -> bytes:
    return (
        bytes.fromhex("30819b3010")
        + oids.EC_PUBLIC_KEY
        + oids.SECP521R1
        + bytes.fromhex("03818600")
        + point.uncompressed()
        + bytes(2)
    )


def _signer_info(signer_ski: bytes, signature: tuple[int, int]) -> bytes:
    r, s = signature
    return (
        bytes.fromhex("3081cc0201038020") + signer_ski
        + bytes.fromhex("300b") + oids.SHA512
        + bytes.fromhex("300a") + oids.ECDSA_WITH_SHA512
        + bytes.fromhex("04818b3081880242") + r.to_bytes(P521_COORDINATE_BYTES, "big")
        + bytes.fromhex("0242") + s.to_bytes(P521_COORDINATE_BYTES, "big")
        + bytes(1)
    )  # fmt: skip


def build_oa2_certificate(
    point: PublicPoint,
    subject_ski: bytes,
    signer_ski: bytes,
    sign_body: Callable[[bytes], tuple[int, int]],
) -> bytes:
    """An OA2 certificate for ``point``; ``sign_body`` is the parent key signing bytes [0:464]."""
    if len(subject_ski) != 32 or len(signer_ski) != 32:
        raise ValueError("OA SKIs are 32 bytes")
    body = _header() + bytes(8) + _metadata(subject_ski, signer_ski) + _aux() + _spki(point)
    assert len(body) == OA2_BODY_BYTES  # fixed layout (§3.9)
    certificate = body + _signer_info(signer_ski, sign_body(body))
    assert len(certificate) == OA2_CERTIFICATE_BYTES
    return certificate


def parse_oa2_certificate(certificate: bytes) -> OACertificate:
    """Read an OA2 certificate at the fixed offsets the SDK uses."""
    if len(certificate) != OA2_CERTIFICATE_BYTES or certificate[0] != OA2_FORMAT_MARKER:
        raise MalformedTKEMessage("not an OA2 certificate (672 bytes starting 0x45)")
    coordinates = certificate[_POINT]
    if coordinates[0] != 0x04:
        raise MalformedTKEMessage("OA2 certificate key is not an uncompressed point")
    return OACertificate(
        subject_ski=certificate[_SUBJECT_SKI],
        signer_ski=certificate[_SIGNER_SKI],
        point=PublicPoint(
            x=int.from_bytes(coordinates[1:67], "big"), y=int.from_bytes(coordinates[67:], "big")
        ),
        body=certificate[:OA2_BODY_BYTES],
        signature=(
            int.from_bytes(certificate[_SIGNATURE_R], "big"),
            int.from_bytes(certificate[_SIGNATURE_S], "big"),
        ),
    )
