"""The KPH certificate: TKE's 309-byte wrapper of an importer public key (TKE-REFERENCE §6.5)."""

from __future__ import annotations

from signserv.contract import P521_COORDINATE_BYTES, PublicPoint
from signserv.tke.errors import MalformedTKEMessage

KPH_CERTIFICATE_BYTES = 309
_POINT_OFFSET = 44
# §6.5: 'K', M=1, N=1, 00, curve type 0 (prime), key length 133, curve size 521.
_HEADER = bytes([0x4B, 1, 1, 0, 0, 0x85]) + (521).to_bytes(2, "big")
_HEADER_OFFSET = 36


def build_kph_certificate(point: PublicPoint) -> bytes:
    """Zeros, the header at byte 36, the uncompressed point at byte 44, zeros up to 309 bytes."""
    body = bytes(_HEADER_OFFSET) + _HEADER + point.uncompressed()
    return body.ljust(KPH_CERTIFICATE_BYTES, b"\x00")


def parse_kph_certificate(certificate: bytes) -> PublicPoint:
    """The importer public key inside a KPH certificate."""
    if len(certificate) != KPH_CERTIFICATE_BYTES:
        raise MalformedTKEMessage(f"KPH certificate is {len(certificate)} bytes, not 309")
    if certificate[_HEADER_OFFSET:_POINT_OFFSET] != _HEADER or certificate[_POINT_OFFSET] != 0x04:
        raise MalformedTKEMessage("KPH certificate header is not a P-521 key holder")
    return PublicPoint.from_uncompressed(
        certificate[_POINT_OFFSET : _POINT_OFFSET + 1 + 2 * P521_COORDINATE_BYTES]
    )
