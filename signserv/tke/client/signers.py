"""SIGNSERVKEYS keys as command signers, and the choice of enough installed ones for a threshold.

Tokens are asked for only when a key is actually looked at, and keys are looked at in
SIGNSERVKEYS order (or the order the caller names them), stopping as soon as enough signers
are found: a deterministic choice, where the Go SDK's depends on map iteration (§7.4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from signserv.client import SigningServiceClient, SignServKey, resolve_token
from signserv.contract import PublicPoint
from signserv.secret import Secret
from signserv.tke.errors import TKEError
from signserv.tke.wire.admin_cert import assemble_admin_certificate, build_admin_tbs


class UnknownSignatureKey(TKEError, LookupError):
    """A key name that is not listed in SIGNSERVKEYS."""


class NotEnoughSignatureKeys(TKEError):
    """SIGNSERVKEYS does not hold enough installed administrators to meet a threshold."""


class ServiceSigner:
    """A SIGNSERVKEYS key used through the signing service; its point is fetched once."""

    def __init__(self, client: SigningServiceClient, key: str, token: Secret[str]) -> None:
        self._client = client
        self._key = key
        self._token = token
        self._point: PublicPoint | None = None

    @property
    def label(self) -> str:
        """The key name of SIGNSERVKEYS."""
        return self._key

    @property
    def point(self) -> PublicPoint:
        """The key's public point, as GET /keys returns it (checked to lie on P-521)."""
        if self._point is None:
            self._point = self._client.public_key(self._key, self._token)
        return self._point

    @property
    def ski(self) -> bytes:
        """SHA-256 of the uncompressed point (§2.1)."""
        return self.point.ski()

    def sign(self, data: bytes) -> bytes:
        """POST /sign; the client verifies the signature before returning it."""
        return self._client.sign(self._key, self._token, data)

    def admin_certificate(self, name: str) -> bytes:
        """A certificate for administrator ``name``, signed over SHA-512(TBS) as §1.7 requires.

        The service hashes its input once more, so the signature covers SHA-512(SHA-512(TBS)).
        """
        tbs = build_admin_tbs(name, self.point)
        return assemble_admin_certificate(tbs, self.sign(hashlib.sha512(tbs).digest()))


class KeyRing:
    """The SIGNSERVKEYS keys of one signing service, each turned into a signer on first use."""

    def __init__(
        self,
        client: SigningServiceClient,
        entries: Sequence[SignServKey],
        *,
        token_for: Callable[[SignServKey], Secret[str]] = resolve_token,
    ) -> None:
        self._client = client
        self._entries = {entry.key: entry for entry in entries}
        self._token_for = token_for
        self._signers: dict[str, ServiceSigner] = {}

    @property
    def key_names(self) -> list[str]:
        """The key names in SIGNSERVKEYS order."""
        return list(self._entries)

    def signer(self, key: str) -> ServiceSigner:
        """The signer for a SIGNSERVKEYS key; its token is resolved (maybe asked for) once."""
        if key not in self._signers:
            entry = self._entries.get(key)
            if entry is None:
                raise UnknownSignatureKey(
                    f"signature key {key!r} is not listed in SIGNSERVKEYS "
                    f"(listed: {', '.join(self._entries) or 'none'})"
                )
            self._signers[key] = ServiceSigner(self._client, key, self._token_for(entry))
        return self._signers[key]

    def installed_signers(
        self,
        installed_skis: Sequence[bytes],
        needed: int,
        *,
        location: str,
        candidates: Sequence[str] | None = None,
    ) -> list[ServiceSigner]:
        """The first ``needed`` candidate keys whose SKIs are installed, each SKI at most once."""
        if needed == 0:
            return []
        chosen: list[ServiceSigner] = []
        for key in self.key_names if candidates is None else candidates:
            signer = self.signer(key)
            if signer.ski in installed_skis and all(signer.ski != c.ski for c in chosen):
                chosen.append(signer)
                if len(chosen) == needed:
                    return chosen
        found = ", ".join(signer.label for signer in chosen) or "none"
        raise NotEnoughSignatureKeys(
            f"crypto unit {location} needs {needed} signature(s) by installed administrators; "
            f"the signature keys offered that are installed there: {found}"
        )
