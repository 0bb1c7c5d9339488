"""The emulator state as a JSON document: bytes as hex, keys as hex scalars, explicit version."""

from __future__ import annotations

from typing import Any

from signserv.tke.emulator.state import CryptoUnitState, DomainState, InstanceState, UnitType
from signserv.tke.errors import EmulatorStateError

FORMAT_VERSION = 1


def _optional_hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _domain_document(domain: DomainState) -> dict[str, Any]:
    return {
        "index": domain.index,
        "instance_id": domain.instance_id.hex(),
        "admins": [
            {"ski": ski.hex(), "certificate": certificate.hex()}
            for ski, certificate in domain.admins.items()
        ],
        "signature_threshold": domain.signature_threshold,
        "revocation_threshold": domain.revocation_threshold,
        "permissions": domain.permissions,
        "mode": domain.mode,
        "standards": domain.standards,
        "counter": domain.counter.hex(),
        "current_wk": _optional_hex(domain.current_wk),
        "pending_wk": _optional_hex(domain.pending_wk),
        "pending_committed": domain.pending_committed,
        "importer_key": None if domain.importer_key is None else f"{domain.importer_key:x}",
        "control_points": domain.control_points.hex(),
    }


def instance_to_document(instance: InstanceState) -> dict[str, Any]:
    """The JSON-ready document of an instance."""
    return {
        "format": FORMAT_VERSION,
        "oa_root_key": f"{instance.oa_root_key:x}",
        "crypto_units": [
            {
                "hsm_id": unit.hsm_id,
                "type": unit.unit_type.value,
                "location": unit.location,
                "serial": unit.serial,
                "module_instance": unit.module_instance.hex(),
                "oa_certificates": [certificate.hex() for certificate in unit.oa_certificates],
                "epoch_key": f"{unit.epoch_key:x}",
                "domain": _domain_document(unit.domain),
            }
            for unit in instance.crypto_units
        ],
    }


def _optional_bytes(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def _domain_from(document: dict[str, Any]) -> DomainState:
    return DomainState(
        index=int(document["index"]),
        instance_id=bytes.fromhex(document["instance_id"]),
        admins={
            bytes.fromhex(admin["ski"]): bytes.fromhex(admin["certificate"])
            for admin in document["admins"]
        },
        signature_threshold=int(document["signature_threshold"]),
        revocation_threshold=int(document["revocation_threshold"]),
        permissions=int(document["permissions"]),
        mode=int(document["mode"]),
        standards=int(document["standards"]),
        counter=bytes.fromhex(document["counter"]),
        current_wk=_optional_bytes(document["current_wk"]),
        pending_wk=_optional_bytes(document["pending_wk"]),
        pending_committed=bool(document["pending_committed"]),
        importer_key=None
        if document["importer_key"] is None
        else int(document["importer_key"], 16),
        control_points=bytes.fromhex(document["control_points"]),
    )


def instance_from_document(document: object, *, source: str) -> InstanceState:
    """Rebuild an instance; any missing or mistyped member is an error naming ``source``."""
    try:
        if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
            raise EmulatorStateError(
                f"{source}: not an emulator state file of format {FORMAT_VERSION}"
            )
        return InstanceState(
            oa_root_key=int(document["oa_root_key"], 16),
            crypto_units=[
                CryptoUnitState(
                    hsm_id=str(unit["hsm_id"]),
                    unit_type=UnitType(unit["type"]),
                    location=str(unit["location"]),
                    serial=str(unit["serial"]),
                    module_instance=bytes.fromhex(unit["module_instance"]),
                    oa_certificates=[bytes.fromhex(cert) for cert in unit["oa_certificates"]],
                    epoch_key=int(unit["epoch_key"], 16),
                    domain=_domain_from(unit["domain"]),
                )
                for unit in document["crypto_units"]
            ],
        )
    except EmulatorStateError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise EmulatorStateError(f"{source}: emulator state is damaged ({exc!r})") from None
