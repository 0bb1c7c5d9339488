"""A faithful local crypto-unit emulator that verifies every admin signature (TKE-REFERENCE §4.6, §6)."""

from __future__ import annotations

from signserv.tke.emulator.provisioning import InstanceLayout
from signserv.tke.emulator.service import DEFAULT_STATE_FILENAME, CryptoUnitEmulator, open_emulator

__all__ = ["DEFAULT_STATE_FILENAME", "CryptoUnitEmulator", "InstanceLayout", "open_emulator"]
