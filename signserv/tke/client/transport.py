"""How the TKE client reaches crypto units: two TKE API calls (TKE-REFERENCE §3.2-§3.3)."""

from __future__ import annotations

from typing import Protocol


class CryptoUnitTransport(Protocol):
    """A service instance's crypto units, reachable by their ``hsm_id``."""

    def list_crypto_units(self) -> dict[str, object]:
        """The JSON document of ``GET /hsms``: hsms, source_hsms, failover_hsms (§3.2)."""
        ...

    def send(self, hsm_id: str, htp_request: str) -> str:
        """Deliver one HTPRequest string to a crypto unit; return its HTPResponse string (§3.3)."""
        ...
