"""The emulator's state model: a service instance, its crypto units, their domains (TKE-REFERENCE §6.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from signserv.tke.wire.commands import DEFAULT_PERMISSIONS
from signserv.tke.wire.counter import COUNTER_BYTES

MAX_ADMINS = 8
CONTROL_POINT_BYTES = 16
# §6.1 leaves the control points to the implementation: every control point enabled.
DEFAULT_CONTROL_POINTS = b"\xff" * CONTROL_POINT_BYTES


class UnitType(str, Enum):
    """How GET /hsms lists a crypto unit (§3.6)."""

    OPERATIONAL = "operational"
    RECOVERY = "recovery"
    FAILOVER = "failover"


@dataclass
class DomainState:
    """One domain (the "crypto unit" a TKE user sees): admins, attributes, counter, registers."""

    index: int
    instance_id: bytes
    admins: dict[bytes, bytes] = field(default_factory=dict)
    signature_threshold: int = 0
    revocation_threshold: int = 0
    permissions: int = DEFAULT_PERMISSIONS
    mode: int = 0
    standards: int = 0
    counter: bytes = bytes(COUNTER_BYTES)
    current_wk: bytes | None = None
    pending_wk: bytes | None = None
    pending_committed: bool = False
    importer_key: int | None = None
    control_points: bytes = DEFAULT_CONTROL_POINTS

    @property
    def in_imprint_mode(self) -> bool:
        """Imprint mode is a signature threshold of 0 (§6.2)."""
        return self.signature_threshold == 0

    def zeroize(self) -> None:
        """Back to the state of §6.1; the counter stays monotonic and the identity stays."""
        fresh = DomainState(index=self.index, instance_id=self.instance_id, counter=self.counter)
        self.__dict__.update(fresh.__dict__)


@dataclass
class CryptoUnitState:
    """A crypto unit: its listing, its module's identity and OA chain, and its domain."""

    hsm_id: str
    unit_type: UnitType
    location: str
    serial: str
    module_instance: bytes
    oa_certificates: list[bytes]
    epoch_key: int
    domain: DomainState

    @property
    def module_id(self) -> bytes:
        """moduleId: 8 ASCII serial characters and 8 bytes of module instance (§3.7)."""
        return self.serial.encode("ascii") + self.module_instance

    @property
    def domain_id(self) -> bytes:
        """domainId: ``u32(domain index) || instance id``."""
        return self.domain.index.to_bytes(4, "big") + self.domain.instance_id


@dataclass
class InstanceState:
    """A service instance: the emulator's OA root key and its crypto units in listing order."""

    oa_root_key: int
    crypto_units: list[CryptoUnitState]
