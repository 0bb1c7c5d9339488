"""The emulated service instance: the crypto units behind :class:`CryptoUnitTransport`."""

from __future__ import annotations

from pathlib import Path

from signserv.contract import PublicPoint
from signserv.tke.emulator.admin_requests import answer_admin_request
from signserv.tke.emulator.persistence import StateFile
from signserv.tke.emulator.provisioning import InstanceLayout, provision_instance
from signserv.tke.emulator.queries import answer_xcp_info
from signserv.tke.emulator.state import CryptoUnitState, InstanceState, UnitType
from signserv.tke.errors import CryptoUnitRefused, MalformedTKEMessage, UnknownCryptoUnit
from signserv.tke.wire.admin_messages import AdminResponse, decode_admin_request
from signserv.tke.wire.commands import ADMIN_FUNCTION_ID, XCP_INFO_FUNCTION_ID
from signserv.tke.wire.cprb import Cprb
from signserv.tke.wire.fields import decode_octet_sequence, decode_u32
from signserv.tke.wire.htp import HTPError, decode_htp_request, encode_htp_response
from signserv.tke.wire.location import parse_location
from signserv.tke.wire.raw_key_material import public_point_of
from signserv.tke.wire.return_codes import ReturnCode
from signserv.tke.wire.xcp_info import XcpInfoRequest, XcpInfoResponse, decode_xcp_info_request

_LISTING_KEYS = {
    UnitType.OPERATIONAL: "hsms",
    UnitType.RECOVERY: "source_hsms",
    UnitType.FAILOVER: "failover_hsms",
}
DEFAULT_STATE_FILENAME = "signserv-tke-emulator.json"
# An HTP-level error for a request that reached the wrong crypto module (§3.5 columns): the
# triple 9-2-0 the SDK's message table reads as "Crypto Module index is not within the
# allowed range."
_WRONG_MODULE = HTPError(" 9", "       2", "       0", text="crypto module index does not match")


def _answer_xcp_info(unit: CryptoUnitState, request: XcpInfoRequest) -> bytes:
    if request.domain != unit.domain.index:
        return XcpInfoResponse(request.domain, ReturnCode.INVALID_DOMAIN, b"").encode()
    try:
        answer = answer_xcp_info(unit, request.subtype)
    except CryptoUnitRefused as refused:
        return XcpInfoResponse(request.domain, refused.return_code, b"").encode()
    return XcpInfoResponse(request.domain, ReturnCode.OK, answer).encode()


def _function_id(payload: bytes) -> int | None:
    """The function id of an EP11 request (four OCTET STRINGs), or None if unreadable."""
    try:
        fields = decode_octet_sequence(payload, counts=(4,), what="EP11 request")
        return decode_u32(fields[0], what="EP11 function id")
    except MalformedTKEMessage:
        return None


def _answer_payload(unit: CryptoUnitState, cprb: Cprb) -> bytes:
    """Route an EP11 payload by its function id; anything else gets an early error (§3.7)."""
    function = _function_id(cprb.payload)
    if cprb.domain != unit.domain.index:
        return AdminResponse(cprb.domain, ReturnCode.INVALID_DOMAIN).encode()
    try:
        if function == ADMIN_FUNCTION_ID:
            return answer_admin_request(unit, decode_admin_request(cprb.payload)).encode()
        if function == XCP_INFO_FUNCTION_ID:
            return _answer_xcp_info(unit, decode_xcp_info_request(cprb.payload))
    except MalformedTKEMessage:
        pass  # a known function id with unreadable fields: answered below like an unknown one
    return AdminResponse(cprb.domain, ReturnCode.BAD_ARGUMENTS).encode()


class CryptoUnitEmulator:
    """A local service instance of emulated crypto units, persisted in one JSON state file.

    The file is created on first use with ``layout`` (default 2 operational + 1 recovery
    crypto unit, all in imprint mode); an existing file is used as it is. Every call locks
    the file, so several processes may share one instance.
    """

    def __init__(self, state_path: Path | str, layout: InstanceLayout | None = None) -> None:
        chosen = layout or InstanceLayout()
        self._state = StateFile(Path(state_path), lambda: provision_instance(chosen))

    @property
    def state_path(self) -> Path:
        """Where the instance is persisted."""
        return self._state.path

    def list_crypto_units(self) -> dict[str, object]:
        """The GET /hsms document: operational, recovery and failover units (§3.2)."""
        listing: dict[str, list[dict[str, str]]] = {key: [] for key in _LISTING_KEYS.values()}
        with self._state.transaction() as instance:
            for unit in instance.crypto_units:
                listing[_LISTING_KEYS[unit.unit_type]].append(
                    {
                        "hsm_id": unit.hsm_id,
                        "location": unit.location,
                        "serial_number": unit.serial,
                        "type": unit.unit_type.value,
                    }
                )
        return dict(listing)

    def send(self, hsm_id: str, htp_request: str) -> str:
        """Answer one HTPRequest string with an HTPResponse string (§3.3-§3.5)."""
        request = decode_htp_request(htp_request)
        with self._state.transaction() as instance:
            unit = _find_unit(instance, hsm_id)
            if request.crypto_module != parse_location(unit.location).crypto_module:
                return encode_htp_response(request.cprb.as_response(b""), _WRONG_MODULE)
            payload = _answer_payload(unit, request.cprb)
        return encode_htp_response(request.cprb.as_response(payload))

    def oa_trust_anchor(self) -> tuple[bytes, PublicPoint]:
        """(signer SKI, public point) of the emulator's OA root, for the client's chain check (§3.9)."""
        with self._state.transaction() as instance:
            root = public_point_of(instance.oa_root_key)
        return root.ski(), root


def _find_unit(instance: InstanceState, hsm_id: str) -> CryptoUnitState:
    for unit in instance.crypto_units:
        if unit.hsm_id == hsm_id:
            return unit
    raise UnknownCryptoUnit(f"no crypto unit {hsm_id!r} in this service instance")


def open_emulator(
    state_path: Path | str, layout: InstanceLayout | None = None
) -> CryptoUnitEmulator:
    """The emulator persisted at ``state_path`` (the CLI passes $CLOUDTKEFILES/DEFAULT_STATE_FILENAME)."""
    return CryptoUnitEmulator(state_path, layout)
