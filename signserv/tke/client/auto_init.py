"""``auto-init`` and ``auto-mk-rotate``: the plug-in's one-command ceremonies (seed 004).

auto-init installs the chosen SIGNSERVKEYS keys as administrators, sets both thresholds and
loads a random master key made in a recovery unit into every unit. It is the Update of
:mod:`signserv.tke.client.hsm_update` for a configuration built from the answers, refused unless
every unit is in imprint mode or already carries exactly that configuration (what a run
stopped half-way leaves behind), so a re-run finishes the job and never rewrites a unit
that someone else configured.
"""

from __future__ import annotations

from collections.abc import Sequence

from signserv.tke.client.hsm_config import HsmConfig
from signserv.tke.client.hsm_update import CheckedConfiguration, ConfiguredAdmin, update_instance
from signserv.tke.client.master_key_distribution import Progress, rotate_master_key
from signserv.tke.client.master_key_transfer import ChooseSigners
from signserv.tke.client.session import CommandSigner, CryptoUnitSession
from signserv.tke.client.signers import KeyRing
from signserv.tke.client.workflows import WorkflowError


def require_initializable(config: HsmConfig, checked: CheckedConfiguration) -> None:
    """Every unit is in imprint mode, or holds exactly these admins and thresholds already."""
    wanted_admins = {admin.ski for admin in checked.block}
    wanted_thresholds = (config.signature_threshold, config.revocation_threshold)
    for unit in checked.units:
        attributes = unit.attributes
        if attributes.imprint_mode:
            continue
        thresholds = (attributes.signature_threshold, attributes.revocation_threshold)
        if set(unit.installed) != wanted_admins or thresholds != wanted_thresholds:
            raise WorkflowError(
                f"crypto unit {unit.status.location} is not in imprint mode and is configured "
                "otherwise: compare the units with cryptounit-compare; if no current master "
                "key is set, zeroize them with cryptounit-zeroize and run auto-init again"
            )


def auto_initialize(
    config: HsmConfig,
    checked: CheckedConfiguration,
    sessions: Sequence[CryptoUnitSession],
    progress: Progress,
) -> bool:
    """Initialize (or finish initializing) every unit; True if any unit changed."""
    require_initializable(config, checked)
    return update_instance(config, checked, sessions, progress)


def auto_init_admins(key_ring: KeyRing, chosen: Sequence[tuple[str, str]]) -> list[ConfiguredAdmin]:
    """(SIGNSERVKEYS key, administrator name) pairs as configured administrators."""
    return [ConfiguredAdmin(name, key_ring.signer(key)) for key, name in chosen]


def installed_signers(key_ring: KeyRing, signing_keys: Sequence[str] | None) -> ChooseSigners:
    """Signers chosen per unit among its installed administrators, in SIGNSERVKEYS order."""

    def choose(session: CryptoUnitSession, count: int) -> Sequence[CommandSigner]:
        return key_ring.installed_signers(
            session.admin_skis(),
            count,
            location=session.unit.location_text,
            candidates=signing_keys,
        )

    return choose


def auto_rotate_master_key(
    sessions: Sequence[CryptoUnitSession],
    key_ring: KeyRing,
    progress: Progress,
    *,
    signing_keys: Sequence[str] | None = None,
) -> None:
    """Rotate the master key of every unit; signers are checked on every unit first."""
    choose = installed_signers(key_ring, signing_keys)
    for session in sessions:
        attributes = session.attributes()
        if attributes.imprint_mode:
            raise WorkflowError(
                f"crypto unit {session.unit.location_text} is in imprint mode: initialize "
                "the service instance with auto-init first"
            )
        choose(session, attributes.signature_threshold)
    rotate_master_key(sessions, choose, progress)
