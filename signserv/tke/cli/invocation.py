"""What ``signserv-tke``'s global options decided, and the crypto units a command works on."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from signserv.client import (
    DEFAULT_TIMEOUT_SECONDS,
    SigningServiceClient,
    load_signservkeys,
    resolve_token,
)
from signserv.tke.cli.cloud_options import CloudOptions
from signserv.tke.client.cloud_api import CloudTkeApi, tke_api_session
from signserv.tke.client.selection import read_selected_ids
from signserv.tke.client.session import (
    CryptoUnit,
    CryptoUnitSession,
    TrustAnchors,
    parse_crypto_units,
)
from signserv.tke.client.signers import KeyRing
from signserv.tke.client.targeting import resolve_target
from signserv.tke.client.transport import CryptoUnitTransport
from signserv.tke.client.trust_anchors import trust_anchors
from signserv.tke.emulator import DEFAULT_STATE_FILENAME, open_emulator
from signserv.tke.errors import TKEError


class UsageProblem(TKEError):
    """The command needs something the user did not give and cannot be asked for."""


def _ask_without_echo(prompt: str) -> str:
    """A no-echo prompt (click's, so tests can drive it) for a token left out of SIGNSERVKEYS."""
    return str(click.prompt(prompt.rstrip(": "), hide_input=True, type=str, err=True))


@dataclass
class Invocation:
    """What the top-level options decided; commands build their resources from it."""

    interactive: bool = field(default_factory=sys.stdin.isatty)
    verbose: bool = False
    files: Path | None = None
    signserv_url: str | None = None
    emulator_state: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    ca_bundle: Path | None = None
    cloud: CloudOptions = field(default_factory=CloudOptions)
    _connection: Connection | None = None

    def files_directory(self) -> Path:
        """``$CLOUDTKEFILES``, which must be set and exist."""
        if self.files is None:
            raise UsageProblem(
                "CLOUDTKEFILES is not set: point it at the directory that holds SIGNSERVKEYS"
            )
        if not self.files.is_dir():
            raise UsageProblem(f"CLOUDTKEFILES directory {self.files} does not exist")
        return self.files

    def connection(self) -> Connection:
        """The crypto units' transport: the cloud TKE API when targeted, else the local emulator."""
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def _connect(self) -> Connection:
        target = resolve_target(
            instance_id=self.cloud.instance_id,
            region=self.cloud.region,
            api_endpoint=self.cloud.tke_endpoint,
            base_url=self.cloud.api_endpoint,
        )
        if target is None:
            state = self.emulator_state or self.files_directory() / DEFAULT_STATE_FILENAME
            given = self.cloud.cloud_settings_without_instance()
            if given:
                click.echo(
                    f"warning: {', '.join(given)} set but no service instance id "
                    "(--instance-id or IBMCLOUD_HPCS_INSTANCE_ID): using the local emulator "
                    f"({state}), not IBM Cloud",
                    err=True,
                )
            emulator = open_emulator(state)
            # The emulator's OA root stands in for the IBM roots real units chain up to (§3.9).
            return Connection(
                emulator,
                dict([emulator.oa_trust_anchor()]),
                f"local emulator {state}",
                emulator_state=state,
            )
        session = tke_api_session()
        tokens = self.cloud.access_tokens(
            session, timeout=self.timeout, interactive=self.interactive
        )
        api = CloudTkeApi(
            target,
            tokens,
            session=session,
            timeout=self.timeout,
            ca_bundle=self.cloud.api_ca_bundle,
        )
        return Connection(
            api,
            trust_anchors(self.cloud.trusted_roots),
            f"service instance {target.instance_id} at {target.base_url}",
            instance_id=target.instance_id,
            endpoint=target.base_url,
        )

    def key_ring(self) -> KeyRing:
        """SIGNSERVKEYS keys used through the service at TKE_SIGNSERV_URL."""
        if not self.signserv_url:
            raise UsageProblem(
                "TKE_SIGNSERV_URL is not set: signserv-tke signs every command through a "
                "signing service"
            )
        client = SigningServiceClient(
            self.signserv_url, timeout=self.timeout, ca_bundle=self.ca_bundle
        )
        entries = load_signservkeys(self.files_directory())
        return KeyRing(
            client,
            entries,
            token_for=lambda entry: resolve_token(
                entry, interactive=self.interactive, ask=_ask_without_echo
            ),
        )

    def ask(self, prompt: str, *, option: str) -> str:
        """Prompt on a terminal; otherwise say which option to pass instead."""
        if not self.interactive:
            raise UsageProblem(f"stdin is not a terminal: pass {option}")
        return str(click.prompt(prompt, type=str, err=True))

    def confirm(self, question: str, *, assume_yes: bool) -> None:
        """Go on only after a yes on the terminal, or with --yes."""
        if assume_yes:
            return
        if not self.interactive:
            raise UsageProblem("stdin is not a terminal: pass --yes to confirm")
        if not click.confirm(question, default=False, err=True):
            raise UsageProblem("cancelled; nothing was changed")


@dataclass(frozen=True)
class Connection:
    """How the crypto units are reached, which OA roots they must chain to, and what to call it."""

    transport: CryptoUnitTransport
    anchors: TrustAnchors
    description: str
    instance_id: str | None = None  # the cloud target's; None for the local emulator
    endpoint: str | None = None  # the TKE API's base URL; None for the local emulator
    emulator_state: Path | None = None  # the local emulator's state file


@dataclass(frozen=True)
class Targets:
    """All crypto units of the instance, and the selected ones as sessions."""

    units: list[CryptoUnit]
    selected_ids: set[str]
    sessions: list[CryptoUnitSession]


def select_targets(invocation: Invocation) -> Targets:
    units = parse_crypto_units(invocation.connection().transport.list_crypto_units())
    selected = read_selected_ids(invocation.files_directory(), units)
    return Targets(
        units=units, selected_ids=selected, sessions=_sessions(invocation, units, selected)
    )


def _sessions(
    invocation: Invocation, units: list[CryptoUnit], wanted: set[str]
) -> list[CryptoUnitSession]:
    connection = invocation.connection()
    return [
        CryptoUnitSession(connection.transport, unit, connection.anchors)
        for unit in units
        if unit.hsm_id in wanted
    ]


def crypto_unit_sessions(invocation: Invocation, *, selected_only: bool) -> list[CryptoUnitSession]:
    """Sessions for the selected units (DOMAINS), or for every unit of the instance."""
    targets = select_targets(invocation)
    if selected_only:
        return targets.sessions
    return _sessions(invocation, targets.units, {unit.hsm_id for unit in targets.units})
