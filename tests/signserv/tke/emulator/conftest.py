"""A small test-side TKE client: real P-521 administrator keys, signed commands, parsed answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from signserv.contract import PublicPoint
from signserv.tke.client.transport import CryptoUnitTransport
from signserv.tke.emulator import CryptoUnitEmulator
from signserv.tke.wire import (
    AdminBlock,
    AdminRequest,
    AdminResponseBlock,
    AttributeId,
    CommandId,
    Cprb,
    DomainInfo,
    HTPRequest,
    SignerInfo,
    XcpInfoRequest,
    assemble_admin_certificate,
    build_admin_tbs,
    decode_admin_response,
    decode_admin_response_block,
    decode_attribute_pairs,
    decode_domain_info,
    decode_htp_response,
    decode_xcp_info_response,
    domain_id,
    encode_attribute_pairs,
    encode_signer_infos,
    increment_counter,
    parse_location,
)

# §6.3: what the SDK's Set Attributes wrapper makes of the default 0x81FF0011.
OPERATIONAL_PERMISSIONS = 0x01FF2055
RECOVERY_PERMISSIONS = 0x01FF205F


class Administrator:
    """An administrator with a real P-521 key that signs like a signing service (§1.7)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._key = ec.generate_private_key(ec.SECP521R1())
        numbers = self._key.public_key().public_numbers()
        self.point = PublicPoint(x=numbers.x, y=numbers.y)
        self.ski = self.point.ski()

    def sign(self, data: bytes) -> bytes:
        """DER (r, s) over SHA-512 of ``data``."""
        return self._key.sign(data, ec.ECDSA(hashes.SHA512()))

    def certificate(self) -> bytes:
        """The admin certificate, signed over SHA-512(SHA-512(TBS)) as via a signing service."""
        tbs = build_admin_tbs(self.name, self.point)
        return assemble_admin_certificate(tbs, self.sign(hashes_sha512(tbs)))

    def signer_info(self, block: bytes) -> SignerInfo:
        """This administrator's SignerInfo over a block's DER."""
        return SignerInfo(ski=self.ski, signature=self.sign(block))


def hashes_sha512(data: bytes) -> bytes:
    """SHA-512 digest (the signing-service input for a certificate)."""
    digest = hashes.Hash(hashes.SHA512())
    digest.update(data)
    return digest.finalize()


@dataclass
class UnitDriver:
    """Sends requests to one emulated crypto unit the way the SDK does (§4.1)."""

    emulator: CryptoUnitTransport  # in process, or over HTTP (CloudTkeApi)
    hsm_id: str
    location: str

    def exchange(self, payload: bytes) -> bytes:
        """Send one EP11 payload, return the response payload."""
        place = parse_location(self.location)
        request = HTPRequest(place.crypto_module, Cprb(place.domain, payload)).encode()
        return decode_htp_response(self.emulator.send(self.hsm_id, request)).payload

    def query(self, command: CommandId, command_input: bytes = b"") -> AdminResponseBlock:
        """An unsigned query with block domainId u32(domain)||0 (vector 13)."""
        domain = parse_location(self.location).domain
        block = AdminBlock(command, domain_id(domain, bytes(4)), command_input=command_input)
        return self._admin(AdminRequest(domain, block.encode()))

    def _admin(self, request: AdminRequest) -> AdminResponseBlock:
        response = decode_admin_response(self.exchange(request.encode()))
        assert response.block is not None, f"early error {response.return_value}"
        return decode_admin_response_block(response.block)

    def signed_block(
        self, command: CommandId, command_input: bytes = b"", counter_step: int = 1
    ) -> AdminBlock:
        """The block for a command, with identity and counter+1 taken from a query (§4.1)."""
        current = self.query(CommandId.QUERY_DOMAIN_ATTRIBUTES)
        counter = current.counter
        for _ in range(counter_step):
            counter = increment_counter(counter)
        return AdminBlock(command, current.domain_id, current.module_id, counter, command_input)

    def send_block(
        self, block: AdminBlock, signers: list[Administrator], *, signer_infos: bytes | None = None
    ) -> AdminResponseBlock:
        """Sign a block's DER with each signer and send it."""
        encoded = block.encode()
        if signer_infos is None:
            signer_infos = encode_signer_infos([signer.signer_info(encoded) for signer in signers])
        return self._admin(AdminRequest(block.domain, encoded, signer_infos))

    def command(
        self,
        command: CommandId,
        command_input: bytes = b"",
        signers: list[Administrator] | None = None,
    ) -> AdminResponseBlock:
        """Build, sign and send a command in one step."""
        return self.send_block(self.signed_block(command, command_input), signers or [])

    def set_thresholds(
        self,
        signature: int,
        revocation: int,
        signers: list[Administrator],
        permissions: int = OPERATIONAL_PERMISSIONS,
    ) -> AdminResponseBlock:
        """Set Attributes as the SDK writes it: ids 1-4 (§6.3, vector 23)."""
        pairs = [
            (AttributeId.SIGNATURE_THRESHOLD, signature),
            (AttributeId.REVOCATION_THRESHOLD, revocation),
            (AttributeId.PERMISSIONS, permissions),
            (AttributeId.MODE, 0),
        ]
        return self.command(CommandId.SET_ATTRIBUTES, encode_attribute_pairs(pairs), signers)

    def imprint_with(
        self, admins: list[Administrator], permissions: int = OPERATIONAL_PERMISSIONS
    ) -> None:
        """Add admins unsigned, then leave imprint mode 2/2 signed by the first two."""
        for admin in admins:
            assert self.command(CommandId.ADD_ADMIN, admin.certificate()).return_code == 0
        leave = self.set_thresholds(2, 2, admins[:2], permissions)
        assert (leave.return_code, leave.reason) == (0, None)

    def attributes(self) -> dict[int, int]:
        """Query Domain Attributes as a dict id → value."""
        return dict(decode_attribute_pairs(self.query(CommandId.QUERY_DOMAIN_ATTRIBUTES).output))

    def installed_skis(self) -> list[bytes]:
        """Query Domain Admins (list): concatenated 32-byte SKIs."""
        output = self.query(CommandId.QUERY_DOMAIN_ADMINS).output
        return [output[offset : offset + 32] for offset in range(0, len(output), 32)]

    def domain_info(self) -> DomainInfo:
        """get_xcp_info subtype 3."""
        domain = parse_location(self.location).domain
        response = decode_xcp_info_response(self.exchange(XcpInfoRequest(domain, 3).encode()))
        return decode_domain_info(response.payload)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    """Where the emulator keeps this test's instance."""
    return tmp_path / "cloudtkefiles" / "emulator.json"


@pytest.fixture
def emulator(state_path: Path) -> CryptoUnitEmulator:
    """A default instance: 2 operational + 1 recovery crypto unit, all in imprint mode."""
    return CryptoUnitEmulator(state_path)


@pytest.fixture
def drivers(emulator: CryptoUnitEmulator) -> list[UnitDriver]:
    """One driver per crypto unit, in listing order (hsms, source_hsms, failover_hsms)."""
    listing = emulator.list_crypto_units()
    units: list[dict[str, str]] = []
    for key in ("hsms", "source_hsms", "failover_hsms"):
        entries = listing[key]
        assert isinstance(entries, list)
        units.extend(entries)
    return [UnitDriver(emulator, unit["hsm_id"], unit["location"]) for unit in units]


@pytest.fixture
def unit(drivers: list[UnitDriver]) -> UnitDriver:
    """The first operational crypto unit."""
    return drivers[0]


@pytest.fixture
def admins() -> list[Administrator]:
    """Three administrators with fresh P-521 keys."""
    return [Administrator(f"admin{number}") for number in range(1, 4)]


@pytest.fixture
def assert_refused_unchanged(state_path: Path) -> Callable[..., None]:
    """Run a sending action; assert the refusal codes and a byte-identical state file."""

    def check(
        send: Callable[[], AdminResponseBlock], return_code: int, reason: int | None = None
    ) -> None:
        before = state_path.read_bytes()
        answer = send()
        assert (answer.return_code, answer.reason) == (return_code, reason)
        assert state_path.read_bytes() == before

    return check


@pytest.fixture
def governed_unit(unit: UnitDriver, admins: list[Administrator]) -> UnitDriver:
    """The first unit with three admins installed, out of imprint mode at thresholds 2/2."""
    unit.imprint_with(admins)
    return unit


@pytest.fixture
def new_admin() -> Callable[[str], Administrator]:
    """Make one more administrator with a fresh key."""
    return Administrator


@pytest.fixture
def recovery(drivers: list[UnitDriver], admins: list[Administrator]) -> UnitDriver:
    """The recovery unit, out of imprint mode with the recovery permissions (0x01FF205F)."""
    drivers[2].imprint_with(admins, RECOVERY_PERMISSIONS)
    return drivers[2]


@pytest.fixture
def operational(drivers: list[UnitDriver], admins: list[Administrator]) -> UnitDriver:
    """The first operational unit, out of imprint mode with 0x01FF2055."""
    drivers[0].imprint_with(admins)
    return drivers[0]
