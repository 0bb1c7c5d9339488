"""What the checks share: the settings of the run, the probe, and the facts earlier checks found."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric import ec

from signserv.checker.errors import PrerequisiteMissing
from signserv.checker.probe import Exchange, ServiceProbe
from signserv.checker.responses import signature_pair
from signserv.checker.results import Verdict
from signserv.checker.signatures import require_sha512_once
from signserv.contract import PublicPoint, build_sign_request_body
from signserv.secret import Secret

_Fact = TypeVar("_Fact")


@dataclass(frozen=True)
class CheckSettings:
    """What to check: a service URL, a key and its token, optionally a second key and token."""

    base_url: str
    key: str
    token: Secret[str]
    second_key: str | None = None
    second_token: Secret[str] | None = None
    ca_bundle: str | None = None
    timeout: float = 10.0


class CheckContext:
    """The probe plus the facts established so far, so later checks can build on earlier ones."""

    def __init__(self, settings: CheckSettings, probe: ServiceProbe) -> None:
        self.settings = settings
        self.probe = probe
        self.publickey_text: str | None = None
        self.publickey_der: bytes | None = None
        self.point: PublicPoint | None = None
        self.verifying_key: ec.EllipticCurvePublicKey | None = None
        self.sample_signature: tuple[int, int] | None = None
        self.wrong_token_answer: Exchange | None = None
        self.unknown_key_answer: Exchange | None = None
        self._signatures_lock = threading.Lock()
        self._signatures: list[tuple[bytes, tuple[int, int]]] = []

    @property
    def signatures(self) -> list[tuple[bytes, tuple[int, int]]]:
        """Every (input, (R, S)) the service returned so far, in order."""
        with self._signatures_lock:
            return list(self._signatures)

    def sign(self, data: bytes, *, trailing_slash: bool = False) -> tuple[int, int]:
        """Ask for a signature exactly as the TKE client does and return its (R, S)."""
        exchange = self.probe.post_sign(
            self.settings.key,
            self.settings.token,
            build_sign_request_body(data),
            trailing_slash=trailing_slash,
        )
        signature = signature_pair(exchange)
        with self._signatures_lock:
            self._signatures.append((data, signature))
        return signature

    def sign_and_verify(self, data: bytes, *, trailing_slash: bool = False) -> tuple[int, int]:
        """Sign ``data`` and require ECDSA P-521 over SHA-512(``data``), hashed once."""
        key = require(self.verifying_key, "public-key.on-curve")
        signature = self.sign(data, trailing_slash=trailing_slash)
        require_sha512_once(key, data, signature)
        return signature


@dataclass(frozen=True)
class Check:
    """One line of the report: a stable id and the function that decides it."""

    id: str
    run: Callable[[CheckContext], Verdict]


def require(fact: _Fact | None, established_by: str) -> _Fact:
    """``fact``, or skip the calling check because ``established_by`` could not establish it."""
    if fact is None:
        raise PrerequisiteMissing(f"skipped: needs what {established_by} could not establish")
    return fact
