"""SignerInfo: one administrator's signature over an xcpAdminBlk (TKE-REFERENCE §4.2).

Several SignerInfos are concatenated raw, with no SET around them; none at all is an empty
OCTET STRING in the request (§9 item 7).
"""

from __future__ import annotations

from dataclasses import dataclass

from signserv import der
from signserv.tke.errors import MalformedSignerInfo
from signserv.tke.wire import oids

SIGNER_INFO_VERSION = 3
SKI_BYTES = 32
_TAG_SUBJECT_KEY_IDENTIFIER = 0x80


@dataclass(frozen=True)
class SignerInfo:
    """A signature, the SKI of the key that made it, and the algorithms (OID DER bytes)."""

    ski: bytes
    signature: bytes
    digest_algorithm: bytes = oids.SHA512
    signature_algorithm: bytes = oids.ECDSA_WITH_SHA512

    def encode(self) -> bytes:
        """The exact bytes the SDK writes: both algorithm identifiers carry NULL parameters."""
        if len(self.ski) != SKI_BYTES:
            raise ValueError(f"a SignerInfo SKI is {SKI_BYTES} bytes")
        null = der.encode_tlv(der.TAG_NULL, b"")
        return der.encode_sequence(
            der.encode_integer(SIGNER_INFO_VERSION),
            der.encode_tlv(_TAG_SUBJECT_KEY_IDENTIFIER, self.ski),
            der.encode_sequence(self.digest_algorithm, null),
            der.encode_sequence(self.signature_algorithm, null),
            der.encode_octet_string(self.signature),
        )


def _algorithm(element: der.TLV, what: str) -> bytes:
    """The OID of an AlgorithmIdentifier; parameters (NULL or absent) are ignored."""
    if element.tag != der.TAG_SEQUENCE:
        raise MalformedSignerInfo(f"SignerInfo {what} is not a SEQUENCE")
    oid = der.read_tlv(element.content)
    if oid.tag != der.TAG_OID:
        raise MalformedSignerInfo(f"SignerInfo {what} does not start with an OID")
    return der.encode_tlv(oid.tag, oid.content)


def _parse_one(element: der.TLV) -> SignerInfo:
    if element.tag != der.TAG_SEQUENCE:
        raise MalformedSignerInfo("SignerInfo is not a SEQUENCE")
    fields = der.split_elements(element.content)
    if len(fields) != 5:
        raise MalformedSignerInfo(f"SignerInfo has {len(fields)} elements, not 5")
    version, ski, digest, signature_algorithm, signature = fields
    if version.tag != der.TAG_INTEGER or version.content != bytes([SIGNER_INFO_VERSION]):
        raise MalformedSignerInfo("SignerInfo version is not 3")
    if ski.tag != _TAG_SUBJECT_KEY_IDENTIFIER or len(ski.content) != SKI_BYTES:
        raise MalformedSignerInfo("SignerInfo does not carry a [0] 32-byte subject key identifier")
    if signature.tag != der.TAG_OCTET_STRING:
        raise MalformedSignerInfo("SignerInfo signature is not an OCTET STRING")
    return SignerInfo(
        ski=ski.content,
        signature=signature.content,
        digest_algorithm=_algorithm(digest, "digest algorithm"),
        signature_algorithm=_algorithm(signature_algorithm, "signature algorithm"),
    )


def encode_signer_infos(signer_infos: list[SignerInfo]) -> bytes:
    """Concatenate SignerInfos in signer order (§4.1 step 4)."""
    return b"".join(signer_info.encode() for signer_info in signer_infos)


def parse_signer_infos(concatenated: bytes) -> list[SignerInfo]:
    """Split and parse concatenated SignerInfos, any number, in the order given."""
    try:
        return [_parse_one(element) for element in der.split_elements(concatenated)]
    except der.DERError as exc:
        raise MalformedSignerInfo(f"SignerInfo is not DER: {exc}") from None
