"""A new emulated service instance: crypto units, locations, serials, OA chains (TKE-REFERENCE §3.2, §3.9)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from signserv.tke.emulator.state import CryptoUnitState, DomainState, InstanceState, UnitType
from signserv.tke.wire.location import Location
from signserv.tke.wire.oa_certificate import build_oa2_certificate
from signserv.tke.wire.raw_key_material import (
    generate_private_scalar,
    public_point_of,
    sign_sha512,
)

EMULATED_DOMAIN = 15


@dataclass(frozen=True)
class InstanceLayout:
    """How many crypto units of each type a new instance gets (default 2 operational + 1 recovery)."""

    operational: int = 2
    recovery: int = 1
    failover: int = 0

    def __post_init__(self) -> None:
        if min(self.operational, self.recovery, self.failover) < 0:
            raise ValueError("crypto-unit counts cannot be negative")
        if self.operational + self.recovery + self.failover == 0:
            raise ValueError("a service instance needs at least one crypto unit")


_ZONES = {
    UnitType.OPERATIONAL: "us-south",
    UnitType.RECOVERY: "us-east",
    UnitType.FAILOVER: "us-east",
}
_HOST_PREFIX = {UnitType.OPERATIONAL: "OP", UnitType.RECOVERY: "RC", UnitType.FAILOVER: "FO"}


def _oa_chain(root_key: int) -> tuple[list[bytes], int]:
    """Certificate 0 (the epoch key) signed by certificate 1 (module key) signed by the root."""
    module_key = generate_private_scalar()
    epoch_key = generate_private_scalar()
    root_ski = public_point_of(root_key).ski()
    module_point = public_point_of(module_key)
    epoch_point = public_point_of(epoch_key)
    module_certificate = build_oa2_certificate(
        module_point, module_point.ski(), root_ski, lambda body: sign_sha512(root_key, body)
    )
    epoch_certificate = build_oa2_certificate(
        epoch_point,
        epoch_point.ski(),
        module_point.ski(),
        lambda body: sign_sha512(module_key, body),
    )
    return [epoch_certificate, module_certificate], epoch_key


def _new_unit(unit_type: UnitType, number: int, root_key: int) -> CryptoUnitState:
    certificates, epoch_key = _oa_chain(root_key)
    location = Location(
        zone=_ZONES[unit_type],
        host=f"AZ{number}-{_HOST_PREFIX[unit_type]}{number}",
        crypto_module=1,
        domain=EMULATED_DOMAIN,
    )
    return CryptoUnitState(
        hsm_id=str(uuid.uuid4()),
        unit_type=unit_type,
        location=location.encode(),
        serial=secrets.token_hex(4).upper(),
        module_instance=secrets.token_bytes(8),
        oa_certificates=certificates,
        epoch_key=epoch_key,
        domain=DomainState(index=EMULATED_DOMAIN, instance_id=secrets.token_bytes(4)),
    )


def provision_instance(layout: InstanceLayout) -> InstanceState:
    """A fresh instance: every unit in imprint mode with empty registers (§6.1)."""
    root_key = generate_private_scalar()
    counts = (
        (UnitType.OPERATIONAL, layout.operational),
        (UnitType.RECOVERY, layout.recovery),
        (UnitType.FAILOVER, layout.failover),
    )
    return InstanceState(
        oa_root_key=root_key,
        crypto_units=[
            _new_unit(unit_type, number, root_key)
            for unit_type, count in counts
            for number in range(1, count + 1)
        ],
    )
