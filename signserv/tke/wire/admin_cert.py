"""P-521 administrator certificates: the fixed 409-byte TBS template, assembly and lenient parsing.

TKE-REFERENCE §2.2-§2.4. The self-signature is never checked by a crypto unit (§1.7, §2.5): a
certificate made through a signing service is signed over SHA-512(SHA-512(TBS)).
"""

from __future__ import annotations

from dataclasses import dataclass

from signserv import der
from signserv.contract import PublicPoint
from signserv.tke.errors import AdministratorNameTooLong, MalformedAdminCertificate
from signserv.tke.wire import oids
from signserv.tke.wire.spki import encode_p521_spki, point_from_bit_string

NAME_BYTES = 30
TBS_BYTES = 409
SKI_BYTES = 32
_TAG_PRINTABLE_STRING = 0x13
_TAG_GENERALIZED_TIME = 0x18
_TAG_VERSION = 0xA0
_TAG_EXTENSIONS = 0xA3
_ORGANIZATIONAL_UNIT = b"TKE Administration"
_NOT_BEFORE = b"20000101000000Z"
_NOT_AFTER = b"21001231235959Z"


def encode_admin_name(name: str) -> bytes:
    """The name's UTF-8 bytes space-padded to 30 bytes; longer names are refused (§2.3)."""
    encoded = name.encode("utf-8")
    if len(encoded) > NAME_BYTES:
        raise AdministratorNameTooLong(
            f"administrator name is {len(encoded)} bytes; at most {NAME_BYTES} bytes are allowed"
        )
    return encoded.ljust(NAME_BYTES, b" ")


def _distinguished_name(padded_name: bytes) -> bytes:
    def attribute(oid: bytes, value: bytes) -> bytes:
        return der.encode_tlv(
            0x31, der.encode_sequence(oid, der.encode_tlv(_TAG_PRINTABLE_STRING, value))
        )

    return der.encode_sequence(
        attribute(oids.ORGANIZATIONAL_UNIT_NAME, _ORGANIZATIONAL_UNIT),
        attribute(oids.COMMON_NAME, padded_name),
    )


def build_admin_tbs(name: str, point: PublicPoint) -> bytes:
    """The 409-byte TBSCertificate for administrator ``name`` holding ``point`` (§2.2)."""
    padded = encode_admin_name(name)
    ski_extension = der.encode_sequence(
        oids.SUBJECT_KEY_IDENTIFIER,
        der.encode_octet_string(der.encode_octet_string(point.ski())),
    )
    tbs = der.encode_sequence(
        der.encode_tlv(_TAG_VERSION, der.encode_integer(2)),
        der.encode_integer(0),
        der.encode_sequence(oids.ECDSA_WITH_SHA512),
        _distinguished_name(padded),
        der.encode_sequence(
            der.encode_tlv(_TAG_GENERALIZED_TIME, _NOT_BEFORE),
            der.encode_tlv(_TAG_GENERALIZED_TIME, _NOT_AFTER),
        ),
        _distinguished_name(padded),
        encode_p521_spki(point),
        der.encode_tlv(_TAG_EXTENSIONS, der.encode_sequence(ski_extension)),
    )
    assert len(tbs) == TBS_BYTES  # the template is fixed-size by construction (§2.2)
    return tbs


def assemble_admin_certificate(tbs: bytes, signature: bytes) -> bytes:
    """``SEQUENCE { TBS, SEQUENCE{ecdsa-with-SHA512}, BIT STRING 00||DER(r,s) }`` (§2.4)."""
    return der.encode_sequence(
        tbs,
        der.encode_sequence(oids.ECDSA_WITH_SHA512),
        der.encode_tlv(der.TAG_BIT_STRING, b"\x00" + signature),
    )


@dataclass(frozen=True)
class AdminCertificate:
    """What a crypto unit reads from an administrator certificate."""

    name: str
    point: PublicPoint
    ski_extension: bytes | None

    @property
    def ski(self) -> bytes:
        """The administrator's identity: SHA-256 of the certificate's point (§2.1)."""
        return self.point.ski()


def _common_name(name_der: bytes) -> str:
    for relative_name in der.split_elements(
        der.expect_tlv(name_der, der.TAG_SEQUENCE, what="Name").content
    ):
        for attribute in der.split_elements(relative_name.content):
            oid, value = der.split_elements(attribute.content)[:2]
            if der.encode_tlv(oid.tag, oid.content) == oids.COMMON_NAME:
                # §2.3: no charset check on the way in, whitespace trimmed on the way out.
                return value.content.decode("utf-8", errors="replace").strip()
    raise MalformedAdminCertificate("administrator certificate issuer has no common name")


def _point(spki: der.TLV) -> PublicPoint:
    key = der.split_elements(spki.content)[1]
    if key.tag != der.TAG_BIT_STRING:
        raise MalformedAdminCertificate("certificate key is not a BIT STRING")
    return point_from_bit_string(key.content)


def _ski_extension(extensions: der.TLV) -> bytes | None:
    for extension in der.split_elements(der.read_tlv(extensions.content).content):
        parts = der.split_elements(extension.content)
        if der.encode_tlv(parts[0].tag, parts[0].content) == oids.SUBJECT_KEY_IDENTIFIER:
            return der.read_tlv(parts[-1].content).content
    return None


def parse_admin_certificate(certificate: bytes) -> AdminCertificate:
    """Read name, point and SKI extension of an admin certificate, leniently (§2.3, §2.5).

    Lengths may be BER, names any bytes; the self-signature is not examined.
    """
    try:
        outer = der.read_tlv(certificate, lenient_lengths=True)
        tbs = der.read_tlv(outer.content, lenient_lengths=True)
        fields = der.split_elements(tbs.content, lenient_lengths=True)
        if fields and fields[0].tag == _TAG_VERSION:
            fields = fields[1:]
        if outer.tag != der.TAG_SEQUENCE or tbs.tag != der.TAG_SEQUENCE or len(fields) < 6:
            raise MalformedAdminCertificate("not an X.509 certificate")
        issuer, spki = fields[2], fields[5]
        extensions = next((field for field in fields[6:] if field.tag == _TAG_EXTENSIONS), None)
        return AdminCertificate(
            name=_common_name(der.encode_tlv(issuer.tag, issuer.content)),
            point=_point(spki),
            ski_extension=None if extensions is None else _ski_extension(extensions),
        )
    except MalformedAdminCertificate:
        raise
    except (der.DERError, IndexError, ValueError) as exc:
        raise MalformedAdminCertificate(
            f"administrator certificate cannot be read: {exc}"
        ) from None
