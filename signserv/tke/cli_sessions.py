"""The crypto units a ``signserv-tke`` command works on, as OA-authenticated sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from signserv.tke.client_session import CryptoUnitSession, parse_crypto_units
from signserv.tke.workflows_selection import read_selected_ids

if TYPE_CHECKING:  # type only: cli.py imports the command modules that import this one
    from signserv.tke.cli import Invocation


def crypto_unit_sessions(invocation: Invocation, *, selected_only: bool) -> list[CryptoUnitSession]:
    """Sessions for the selected units (DOMAINS), or for every unit of the instance."""
    emulator = invocation.emulator()
    units = parse_crypto_units(emulator.list_crypto_units())
    wanted = (
        read_selected_ids(invocation.files_directory(), units)
        if selected_only
        else {unit.hsm_id for unit in units}
    )
    # The emulator's OA root stands in for the IBM roots real crypto units chain up to (§3.9).
    anchors = dict([emulator.oa_trust_anchor()])
    return [CryptoUnitSession(emulator, unit, anchors) for unit in units if unit.hsm_id in wanted]
