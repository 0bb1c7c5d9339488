"""RecipientInfo: a master-key part wrapped for an importer key (TKE-REFERENCE §6.5).

The TKE/EP11 shape, with its non-standard originator encoding. The client only forwards it;
the exporting and importing crypto units build and open it.
"""

from __future__ import annotations

from dataclasses import dataclass

from signserv import der
from signserv.contract import PublicPoint
from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire import oids
from signserv.tke.wire.spki import point_from_bit_string

RECIPIENT_INFO_VERSION = 3
UKM_BYTES = 40
_KEY_AGREEMENT_ALGORITHM = der.encode_sequence(
    oids.DH_SINGLE_PASS_STD_DH_SHA256_KDF,
    der.encode_sequence(oids.AES256_WRAP, der.encode_tlv(der.TAG_NULL, b"")),
)


@dataclass(frozen=True)
class RecipientInfo:
    """Ephemeral originator key, user keying material, importer SKI, wrapped key."""

    originator: PublicPoint
    ukm: bytes
    recipient_ski: bytes
    encrypted_key: bytes

    def encode(self) -> bytes:
        """``SEQUENCE { 3, [0]{[1]{originator}}, [1]{ukm}, algorithm, {{[0]{SKI}, key}} }``."""
        originator_key = der.encode_sequence(
            oids.EC_PUBLIC_KEY,
            der.encode_tlv(der.TAG_BIT_STRING, b"\x00" + self.originator.uncompressed()),
        )
        recipient = der.encode_sequence(
            der.encode_tlv(0xA0, der.encode_octet_string(self.recipient_ski)),
            der.encode_octet_string(self.encrypted_key),
        )
        return der.encode_sequence(
            der.encode_integer(RECIPIENT_INFO_VERSION),
            der.encode_tlv(0xA0, der.encode_tlv(0xA1, originator_key)),
            der.encode_tlv(0xA1, der.encode_octet_string(self.ukm)),
            _KEY_AGREEMENT_ALGORITHM,
            der.encode_sequence(recipient),
        )


def parse_recipient_info(encoded: bytes) -> RecipientInfo:
    """Read a RecipientInfo written by :meth:`RecipientInfo.encode`."""
    try:
        outer = der.expect_tlv(encoded, der.TAG_SEQUENCE, what="RecipientInfo")
        version, originator, ukm, algorithm, recipients = der.split_elements(outer.content)
        if version.content != bytes([RECIPIENT_INFO_VERSION]) or (
            der.encode_tlv(algorithm.tag, algorithm.content) != _KEY_AGREEMENT_ALGORITHM
        ):
            raise MalformedTKEMessage("RecipientInfo is not version 3 ECDH with AES-256 key wrap")
        originator_key = der.read_tlv(der.read_tlv(originator.content).content)
        ski_holder, encrypted_key = der.split_elements(der.read_tlv(recipients.content).content)
        originator_algorithm, originator_bits = der.split_elements(originator_key.content)
        if (
            der.encode_tlv(originator_algorithm.tag, originator_algorithm.content)
            != oids.EC_PUBLIC_KEY
        ):
            raise MalformedTKEMessage("RecipientInfo originator is not an EC key")
        return RecipientInfo(
            originator=point_from_bit_string(originator_bits.content),
            ukm=der.read_tlv(ukm.content).content,
            recipient_ski=der.read_tlv(ski_holder.content).content,
            encrypted_key=encrypted_key.content,
        )
    except MalformedTKEMessage:
        raise
    except (der.DERError, ValueError) as exc:
        raise MalformedTKEMessage(f"RecipientInfo cannot be read: {exc}") from None
