"""Outbound-authentication (OA) certificates of crypto modules (TKE-REFERENCE §3.8-§3.9).

Three formats, told apart as the SDK tells them apart: 7973 or 7810 bytes is CEX8 "OA3";
else a first byte 0x45 is CEX6/CEX7 "OA2"; else CEX5 "OA". OA2 is read by the section
lengths in its header, each present section followed by the SDK's fixed padding; the
emulator emits the 672-byte OA2 layout whose 464-byte body is signed with ECDSA
P-521/SHA-512. Only the offsets the SDK uses are read; the "DER-ish" bytes around them are
not validated, as the SDK does not validate them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from signserv.contract import P521_COORDINATE_BYTES, PublicPoint
from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire import oids

OA2_CERTIFICATE_BYTES = 672
OA2_BODY_BYTES = 464
OA2_FORMAT_MARKER = 0x45
_SECTION_LENGTHS = (4, 173, 83, 158, 207)
# The SDK skips this many pad bytes after each section whose header length is not zero:
# info, metadata, auxiliary data, SPKI, SignerInfo.
_OA2_PADDING = (4, 3, 5, 2, 1)
_OA2_HEADER_BYTES = 32
_OA2_SUBJECT_SKI = slice(87, 119)  # within the metadata section
_OA2_SIGNER_SKI = slice(121, 153)
_SPKI_POINT = slice(25, 158)  # within an SPKI: 04 || X || Y
_OA2_SIGNATURE_R = slice(73, 139)  # within the SignerInfo section
_OA2_SIGNATURE_S = slice(141, 207)

OA3_CERTIFICATE_BYTES = 7973
OA3_MINIBOOT_CERTIFICATE_BYTES = 7810
_OA3_METADATA = slice(4, 99)
_OA3_AUX = slice(99, 182)
_OA3_SIGNER_INFO_OFFSET = 182
_OA3_SIGNER_SKI = slice(9, 41)  # within the SignerInfo
_OA3_KEY_INFO_OFFSET = 54
_OA3_SUBJECT_SKI = slice(23, 55)  # within the ECC key info
# Per form (miniboot, segment 3): the DER prefix before the ECC key info, and the key info's
# length (57 bytes, plus 80 of OA info in the segment-3 form).
_OA3_KEY_INFO_PREFIX = {True: 5, False: 7}
_OA3_KEY_INFO_BYTES = {True: 57, False: 137}
_OA3_SPKI_BYTES = 158
_OA3_R_AFTER_SPKI = 20  # signature algorithm and DER headers between the SPKI and r
_OA3_S_AFTER_R = 68  # r's 66 bytes and the DER header of s

CEX5_ECC_KEY = 2
CEX5_RSA_KEY = 0
CEX5_NEW_CERTIFICATE = 1
# A CEX5 certificate whose own name has this type and an index above 0 is signed by the
# CEX5 root when the unit has no further certificate (the SDK's rule, §3.9).
CEX5_ROOT_SIGNED_NAME_TYPE = 0x9000
_CEX5_HEADER_BYTES = 52


class OAFormat(Enum):
    """The crypto-module generation whose OA certificate layout a chain uses."""

    CEX5 = "CEX5 OA"
    OA2 = "CEX6/CEX7 OA2"
    OA3 = "CEX8 OA3"


@dataclass(frozen=True)
class OACertificate:
    """What a client needs from an OA certificate: who it is, who signed it, and the signature.

    ``subject_id`` and ``signer_id`` are 32-byte SKIs in OA2 and OA3, and the 8-byte key
    names in CEX5 certificates. ``cex5_root_signed`` says a CEX5 certificate's name marks it
    as one the CEX5 root signs.
    """

    format: OAFormat
    subject_id: bytes
    signer_id: bytes
    point: PublicPoint
    body: bytes
    signature: tuple[int, int]
    cex5_root_signed: bool = False


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


def oa_format(certificate: bytes) -> OAFormat:
    """The SDK's format detection: OA3 by its two lengths, OA2 by its first byte, else CEX5."""
    if not certificate:
        raise MalformedTKEMessage("the OA certificate is empty")
    if len(certificate) in (OA3_CERTIFICATE_BYTES, OA3_MINIBOOT_CERTIFICATE_BYTES):
        return OAFormat.OA3
    if certificate[0] == OA2_FORMAT_MARKER:
        return OAFormat.OA2
    return OAFormat.CEX5


def parse_oa_certificate(certificate: bytes, layout: OAFormat | None = None) -> OACertificate:
    """Read an OA certificate in ``layout``, or in the format :func:`oa_format` detects."""
    parsers = {
        OAFormat.OA2: parse_oa2_certificate,
        OAFormat.OA3: parse_oa3_certificate,
        OAFormat.CEX5: parse_cex5_certificate,
    }
    return parsers[layout or oa_format(certificate)](certificate)


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "big")


def _section(data: bytes, start: int, length: int, *, what: str) -> bytes:
    if start + length > len(data):
        raise MalformedTKEMessage(f"OA certificate too short: {len(data)} bytes, reading {what}")
    return data[start : start + length]


def _uncompressed_point(encoded: bytes, *, what: str) -> PublicPoint:
    coordinate = (len(encoded) - 1) // 2
    if len(encoded) < 3 or len(encoded) % 2 == 0 or encoded[0] != 0x04:
        raise MalformedTKEMessage(f"{what} key is not an uncompressed point")
    return PublicPoint(
        x=int.from_bytes(encoded[1 : 1 + coordinate], "big"),
        y=int.from_bytes(encoded[1 + coordinate :], "big"),
    )


def _signature(r: bytes, s: bytes) -> tuple[int, int]:
    return int.from_bytes(r, "big"), int.from_bytes(s, "big")


def parse_oa2_certificate(certificate: bytes) -> OACertificate:
    """Read an OA2 certificate by the five section lengths in its header, as the SDK does."""
    header = _section(certificate, 0, _OA2_HEADER_BYTES, what="the header")
    if header[0] != OA2_FORMAT_MARKER:
        raise MalformedTKEMessage("not an OA2 certificate (first byte 0x45)")
    lengths = [_u32(header, 8 + 4 * index) for index in range(len(_OA2_PADDING))]
    sections = []
    offset = _OA2_HEADER_BYTES
    names = ("info", "metadata", "auxiliary data", "SPKI", "SignerInfo")
    for length, padding, name in zip(lengths, _OA2_PADDING, names, strict=True):
        padded = length + padding if length else 0
        sections.append(_section(certificate, offset, padded, what=f"the {name}"))
        offset += padded
    _, metadata, _, spki, signer_info = sections
    body_end = offset - len(signer_info)
    for section, needed, name in (
        (metadata, _OA2_SIGNER_SKI.stop, "metadata"),
        (spki, _SPKI_POINT.stop, "SPKI"),
        (signer_info, _OA2_SIGNATURE_S.stop, "SignerInfo"),
    ):
        if len(section) < needed:
            raise MalformedTKEMessage(f"OA2 {name} section is {len(section)} bytes, not {needed}")
    return OACertificate(
        format=OAFormat.OA2,
        subject_id=metadata[_OA2_SUBJECT_SKI],
        signer_id=metadata[_OA2_SIGNER_SKI],
        point=_uncompressed_point(spki[_SPKI_POINT], what="OA2 certificate"),
        body=certificate[:body_end],
        signature=_signature(signer_info[_OA2_SIGNATURE_R], signer_info[_OA2_SIGNATURE_S]),
    )


def parse_oa3_certificate(certificate: bytes) -> OACertificate:
    """Read a CEX8 OA3 certificate at the SDK's fixed offsets; only its ECC part is used.

    The 7973-byte form carries 80 bytes of OA info in each key's metadata, the 7810-byte
    miniboot form none; the ECC signature covers metadata, aux data and the ECC key parts.
    """
    if len(certificate) not in (OA3_CERTIFICATE_BYTES, OA3_MINIBOOT_CERTIFICATE_BYTES):
        raise MalformedTKEMessage(
            f"an OA3 certificate is {OA3_CERTIFICATE_BYTES} or "
            f"{OA3_MINIBOOT_CERTIFICATE_BYTES} bytes, not {len(certificate)}"
        )
    miniboot = len(certificate) == OA3_MINIBOOT_CERTIFICATE_BYTES
    signer_info = certificate[_OA3_SIGNER_INFO_OFFSET:]
    key_info_start = _OA3_KEY_INFO_OFFSET + _OA3_KEY_INFO_PREFIX[miniboot]
    key_value_start = key_info_start + _OA3_KEY_INFO_BYTES[miniboot]
    key_value_end = key_value_start + _OA3_SPKI_BYTES
    r_start = key_value_end + _OA3_R_AFTER_SPKI
    s_start = r_start + _OA3_S_AFTER_R
    key_info = signer_info[key_info_start:key_value_start]
    key_value = signer_info[key_value_start:key_value_end]
    return OACertificate(
        format=OAFormat.OA3,
        subject_id=key_info[_OA3_SUBJECT_SKI],
        signer_id=signer_info[_OA3_SIGNER_SKI],
        point=_uncompressed_point(key_value[_SPKI_POINT], what="OA3 certificate"),
        body=certificate[_OA3_METADATA]
        + certificate[_OA3_AUX]
        + signer_info[_OA3_KEY_INFO_OFFSET:key_value_end],
        signature=_signature(
            signer_info[r_start : r_start + P521_COORDINATE_BYTES],
            signer_info[s_start : s_start + P521_COORDINATE_BYTES],
        ),
    )


def parse_cex5_certificate(certificate: bytes) -> OACertificate:
    """Read a CEX5 OA certificate by the offsets and lengths in its header and body."""
    header = _section(certificate, 0, _CEX5_HEADER_BYTES, what="the header")
    if _u32(header, 4) != CEX5_NEW_CERTIFICATE:
        raise MalformedTKEMessage("Invalid OA certificate")
    body = _section(certificate, 8 + _u32(header, 8), _u32(header, 12), what="the body")
    if len(body) < 72:
        raise MalformedTKEMessage(f"CEX5 OA certificate body is {len(body)} bytes, not 72")
    key_type = _u32(body, 4)
    if key_type == CEX5_RSA_KEY:
        raise MalformedTKEMessage(
            "The plug-in does not support OA certificates with an RSA public key"
        )
    if key_type != CEX5_ECC_KEY:
        raise MalformedTKEMessage("Unrecognized OA certificate key type")
    key = _section(body, 8 + _u32(body, 8), _u32(body, 12), what="the public key")
    if len(key) < 26:
        raise MalformedTKEMessage("CEX5 OA certificate public key is too short")
    if key[20] != 0 or int.from_bytes(key[22:24], "big") != 521:
        raise MalformedTKEMessage("Unsupported ECC curve type or size in OA certificate")
    q = _section(key, 26, int.from_bytes(key[24:26], "big"), what="the public point")
    signature = _section(certificate, 16 + _u32(header, 16), _u32(header, 20), what="the signature")
    half = (len(signature) - 8) // 2
    return OACertificate(
        format=OAFormat.CEX5,
        subject_id=body[52:60],
        signer_id=body[64:72],
        point=_uncompressed_point(q, what="CEX5 OA certificate"),
        body=body,
        signature=_signature(signature[8 : 8 + half], signature[8 + half :]),
        cex5_root_signed=int.from_bytes(body[56:58], "big") == CEX5_ROOT_SIGNED_NAME_TYPE
        and int.from_bytes(body[58:60], "big") > 0,
    )
