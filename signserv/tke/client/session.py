"""Talk to one crypto unit as the TKE client does: queries, and signed commands (TKE-REFERENCE §4.1).

A signed command reads the unit's identity and transaction counter with Query Domain
Attributes, fills an xcpAdminBlk with counter + 1, has every chosen administrator sign the
block's exact DER, and sends it; a refusal raises :class:`CryptoUnitRefused` with the EP11
return and reason codes. Every answer must carry the unit's OA signature, by a key whose
certificate chain ends at a trust anchor (§3.8-§3.9).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from signserv.contract import (
    MalformedSignature,
    PointNotOnCurve,
    PublicPoint,
    SignatureMismatch,
    decode_signature,
)
from signserv.tke.client.transport import CryptoUnitTransport
from signserv.tke.client.trust_anchors import CEX5_ROOT
from signserv.tke.errors import (
    CryptoUnitRefused,
    MalformedSignerInfo,
    MalformedTKEMessage,
    TKEError,
)
from signserv.tke.wire import oids
from signserv.tke.wire.admin_cert import AdminCertificate, parse_admin_certificate
from signserv.tke.wire.admin_messages import (
    MODULE_SERIAL_BYTES,
    AdminBlock,
    AdminRequest,
    AdminResponse,
    AdminResponseBlock,
    decode_admin_response,
    decode_admin_response_block,
    domain_id,
)
from signserv.tke.wire.attributes import DomainAttributes
from signserv.tke.wire.commands import CommandId, XcpInfoSubtype
from signserv.tke.wire.counter import increment_counter
from signserv.tke.wire.cprb import Cprb
from signserv.tke.wire.fields import encode_u32
from signserv.tke.wire.htp import HTPRequest, decode_htp_response
from signserv.tke.wire.location import Location, parse_location
from signserv.tke.wire.oa_certificate import (
    OACertificate,
    OAFormat,
    oa_format,
    parse_oa_certificate,
)
from signserv.tke.wire.return_codes import Reason, ReturnCode, refusal
from signserv.tke.wire.signer_info import SignerInfo, encode_signer_infos, parse_signer_infos
from signserv.tke.wire.xcp_info import (
    DomainInfo,
    XcpInfoRequest,
    decode_domain_info,
    decode_xcp_info_response,
)

SKI_BYTES = 32
MAX_OA_CHAIN_LENGTH = 8
_DEVICE_CERTIFICATE_DOMAIN_ID = bytes(8)
_UNIT_LISTS = (("hsms", "operational"), ("source_hsms", "recovery"), ("failover_hsms", "failover"))


class UnexpectedCryptoUnitAnswer(TKEError):
    """A crypto unit answered something the TKE client cannot use (wrong command, serial, size)."""


class UnauthenticatedCryptoUnit(TKEError):
    """A crypto unit's OA certificate chain or response signature does not verify (§3.8-§3.9)."""


TrustAnchors = Mapping[bytes, PublicPoint]
"""OA root keys by signer SKI: the IBM roots for real units, the emulator's root for tests."""


@dataclass(frozen=True)
class CryptoUnit:
    """One crypto unit of a service instance, as ``GET /hsms`` lists it (§3.2, §3.6)."""

    hsm_id: str
    location_text: str
    location: Location
    serial_number: str
    unit_type: str


def _string_field(entry: dict[str, object], name: str, list_name: str) -> str:
    value = entry.get(name)
    if value is None:
        raise UnexpectedCryptoUnitAnswer(f"{list_name} entry: {name} not found")
    if not isinstance(value, str):
        raise UnexpectedCryptoUnitAnswer(f"{list_name} entry: {name} is not a string")
    return value


def parse_crypto_units(document: dict[str, object]) -> list[CryptoUnit]:
    """The units of a ``GET /hsms`` document: operational, then recovery, then failover (§3.2)."""
    if not isinstance(document.get("hsms"), list):
        raise UnexpectedCryptoUnitAnswer("the crypto-unit list has no hsms array")
    units = []
    for list_name, unit_type in _UNIT_LISTS:
        entries = document.get(list_name) or []
        if not isinstance(entries, list):
            raise UnexpectedCryptoUnitAnswer(f"{list_name} is not an array")
        for entry in entries:
            if not isinstance(entry, dict):
                raise UnexpectedCryptoUnitAnswer(f"{list_name} entry is not an object")
            location = _string_field(entry, "location", list_name)
            units.append(
                CryptoUnit(
                    hsm_id=_string_field(entry, "hsm_id", list_name),
                    location_text=location,
                    location=parse_location(location),
                    serial_number=_string_field(entry, "serial_number", list_name),
                    unit_type=unit_type,
                )
            )
    return units


def _decode_domain_attributes(output: bytes) -> DomainAttributes:
    try:
        return DomainAttributes.decode(output)
    except MalformedTKEMessage as exc:
        raise UnexpectedCryptoUnitAnswer(str(exc)) from None


class CommandSigner(Protocol):
    """An administrator key that can sign command blocks; ``ski`` goes into its SignerInfo."""

    @property
    def label(self) -> str:
        """How reports name the key (never its token)."""
        ...

    @property
    def ski(self) -> bytes:
        """The 32-byte subject key identifier of the key (§2.1)."""
        ...

    def sign(self, data: bytes) -> bytes:
        """A DER ECDSA-Sig-Value over SHA-512(data)."""
        ...


def _require_oa_signature(
    point: PublicPoint, signature: tuple[int, int], data: bytes, *, what: str
) -> None:
    try:
        point.verify_sha512(signature, data)
    except (PointNotOnCurve, SignatureMismatch):
        raise UnauthenticatedCryptoUnit(f"{what} does not verify") from None


def verify_response_signature(response: AdminResponse, oa_key: PublicPoint) -> None:
    """The first SignerInfo must be ECDSA P-521/SHA-512 by ``oa_key`` over the block (§3.8)."""
    try:
        signer_infos = parse_signer_infos(response.oa_signer_infos)
        if not signer_infos or signer_infos[0].signature_algorithm != oids.ECDSA_WITH_SHA512:
            raise UnauthenticatedCryptoUnit("the response carries no ECDSA OA signature first")
        signature = decode_signature(signer_infos[0].signature)
    except (MalformedSignerInfo, MalformedSignature) as exc:
        raise UnauthenticatedCryptoUnit(
            f"the response's OA signature is malformed: {exc}"
        ) from None
    _require_oa_signature(
        oa_key, signature, response.block or b"", what="the OA signature of the response"
    )


def read_admin_reply(
    htp_response: str, *, command: int, oa_key: PublicPoint | None
) -> AdminResponseBlock:
    """The response block of an m_admin answer, OA-verified unless ``oa_key`` is None.

    Any EP11 error raises ``CryptoUnitRefused`` with the return and reason codes.
    """
    cprb = decode_htp_response(htp_response)
    if cprb.return_code:
        raise refusal(cprb.return_code, cprb.reason_code or None)
    response = decode_admin_response(cprb.payload)
    if response.return_value or response.block is None:
        raise refusal(response.return_value)
    if oa_key is not None:
        verify_response_signature(response, oa_key)
    block = decode_admin_response_block(response.block)
    if block.command != command:
        raise UnexpectedCryptoUnitAnswer(
            f"the crypto unit answered command {block.command:08x} to command {command:08x}"
        )
    if block.return_code:
        raise refusal(block.return_code, block.reason)
    return block


def _end_of_chain(refused: CryptoUnitRefused, certificate: OACertificate) -> bool:
    """Whether a refused read of the next certificate means ``certificate`` is the last one.

    OA2 and OA3: rc 96 with reason 60. CEX5: rc 96, if the certificate is root-signed.
    """
    if refused.return_code != ReturnCode.KEY_NOT_FOUND:
        return False
    if certificate.format is OAFormat.CEX5:
        return certificate.cex5_root_signed
    return refused.reason == Reason.CERTIFICATE_NOT_FOUND


class CryptoUnitSession:
    """Queries and signed commands for one crypto unit, every answer OA-authenticated."""

    def __init__(
        self, transport: CryptoUnitTransport, unit: CryptoUnit, trust_anchors: TrustAnchors
    ) -> None:
        self.transport = transport
        self.unit = unit
        self._trust_anchors = trust_anchors
        self._oa_key: PublicPoint | None = None

    @property
    def oa_key(self) -> PublicPoint:
        """The unit's epoch OA key, its chain checked up to a trust anchor on first use."""
        if self._oa_key is None:
            self._oa_key = self._authenticate()
        return self._oa_key

    def _device_certificate_bytes(self, index: int, oa_key: PublicPoint | None) -> bytes:
        block = AdminBlock(
            command=CommandId.QUERY_DEVICE_CERT,
            domain_id=_DEVICE_CERTIFICATE_DOMAIN_ID,
            command_input=encode_u32(index),
        )
        return self._send_admin(block, oa_key=oa_key).output

    def _authenticate(self) -> PublicPoint:
        """Check the OA certificate chain up to a trust anchor; return the epoch key (§3.9).

        Certificate 0 holds the epoch key and fixes the chain's format; certificate i must
        verify with certificate i+1 until the unit has no further certificate, and the last
        one must verify with a root: a trust anchor by signer SKI (OA2, OA3), or IBM's CEX5
        root for a CEX5 certificate whose name marks it as root-signed.
        """
        first = self._device_certificate_bytes(0, None)
        layout = oa_format(first)
        epoch = certificate = parse_oa_certificate(first, layout)
        for index in range(1, MAX_OA_CHAIN_LENGTH + 1):
            if certificate.subject_id == certificate.signer_id:
                raise UnauthenticatedCryptoUnit(f"OA certificate {index - 1} is self-signed")
            try:
                parent_bytes = self._device_certificate_bytes(index, epoch.point)
            except CryptoUnitRefused as refused:
                if not _end_of_chain(refused, certificate):
                    raise
                break
            parent = parse_oa_certificate(parent_bytes, layout)
            if layout is not OAFormat.CEX5 and parent.subject_id != certificate.signer_id:
                raise UnauthenticatedCryptoUnit(
                    "Incorrect parent certificate fetched in OA certificate chain."
                )
            _require_oa_signature(
                parent.point,
                certificate.signature,
                certificate.body,
                what=f"OA certificate {index - 1}",
            )
            certificate = parent
        else:
            raise UnauthenticatedCryptoUnit(
                f"OA certificate chain is longer than {MAX_OA_CHAIN_LENGTH}"
            )
        _require_oa_signature(
            self._root_of(certificate),
            certificate.signature,
            certificate.body,
            what="the root OA certificate",
        )
        return epoch.point

    def _root_of(self, certificate: OACertificate) -> PublicPoint:
        """The root key the last certificate of a chain must verify with."""
        if certificate.format is OAFormat.CEX5:
            return CEX5_ROOT
        anchor = self._trust_anchors.get(certificate.signer_id)
        if anchor is None:
            raise UnauthenticatedCryptoUnit(
                f"crypto unit {self.unit.location_text}: its OA chain ends at signer "
                f"{certificate.signer_id.hex()}, which is not a trusted root"
            )
        return anchor

    def _exchange(self, payload: bytes) -> str:
        request = HTPRequest(
            crypto_module=self.unit.location.crypto_module,
            cprb=Cprb(domain=self.unit.location.domain, payload=payload),
        )
        return self.transport.send(self.unit.hsm_id, request.encode())

    def _send_admin(
        self, block: AdminBlock, signer_infos: bytes = b"", *, oa_key: PublicPoint | None
    ) -> AdminResponseBlock:
        request = AdminRequest(
            domain=self.unit.location.domain, block=block.encode(), signer_infos=signer_infos
        )
        return read_admin_reply(
            self._exchange(request.encode()), command=block.command, oa_key=oa_key
        )

    def query(self, command: CommandId, command_input: bytes = b"") -> AdminResponseBlock:
        """An unsigned query: no module id, no counter (§3.7)."""
        block = AdminBlock(
            command=command,
            domain_id=domain_id(self.unit.location.domain, bytes(4)),
            command_input=command_input,
        )
        return self._send_admin(block, oa_key=self.oa_key)

    def _query_attributes(self) -> AdminResponseBlock:
        answer = self.query(CommandId.QUERY_DOMAIN_ATTRIBUTES)
        serial = answer.module_id[:MODULE_SERIAL_BYTES].decode("ascii", errors="replace")
        if serial != self.unit.serial_number:
            raise UnexpectedCryptoUnitAnswer(
                f"crypto unit {self.unit.location_text}: serial number mismatch "
                f"(listed {self.unit.serial_number!r}, unit reports {serial!r})"
            )
        return answer

    def attributes(self) -> DomainAttributes:
        """Thresholds, permissions and mode."""
        return _decode_domain_attributes(self._query_attributes().output)

    def admin_skis(self) -> list[bytes]:
        """The SKIs of the installed administrators, in the unit's order."""
        output = self.query(CommandId.QUERY_DOMAIN_ADMINS).output
        if len(output) % SKI_BYTES:
            raise UnexpectedCryptoUnitAnswer(
                f"administrator list of {len(output)} bytes is not a multiple of {SKI_BYTES}"
            )
        return [output[offset : offset + SKI_BYTES] for offset in range(0, len(output), SKI_BYTES)]

    def admin_certificate(self, ski: bytes) -> AdminCertificate:
        """The installed certificate of one administrator."""
        return parse_admin_certificate(self.query(CommandId.QUERY_DOMAIN_ADMINS, ski).output)

    def domain_info(self) -> DomainInfo:
        """Master-key register states and verification patterns (get_xcp_info, §3.7)."""
        request = XcpInfoRequest(domain=self.unit.location.domain, subtype=XcpInfoSubtype.DOMAIN)
        cprb = decode_htp_response(self._exchange(request.encode()))
        if cprb.return_code:
            raise refusal(cprb.return_code, cprb.reason_code or None)
        return decode_domain_info(decode_xcp_info_response(cprb.payload).payload)

    def run_signed(
        self, command: CommandId, command_input: bytes, signers: Sequence[CommandSigner]
    ) -> bytes:
        """Send a command with one SignerInfo per signer over its block; return the output."""
        context = self._query_attributes()
        if not context.counter:
            raise UnexpectedCryptoUnitAnswer(
                "Query Domain Attributes returned no transaction counter"
            )
        block = AdminBlock(
            command=command,
            domain_id=context.domain_id,
            module_id=context.module_id,
            counter=increment_counter(context.counter),
            command_input=command_input,
        )
        encoded = block.encode()
        signer_infos = [
            SignerInfo(ski=signer.ski, signature=signer.sign(encoded)) for signer in signers
        ]
        answer = self._send_admin(block, encode_signer_infos(signer_infos), oa_key=self.oa_key)
        if answer.counter != block.counter:
            raise UnexpectedCryptoUnitAnswer(
                f"crypto unit {self.unit.location_text} answered with counter "
                f"{answer.counter.hex()} to a command carrying {block.counter.hex()}"
            )
        return answer.output
