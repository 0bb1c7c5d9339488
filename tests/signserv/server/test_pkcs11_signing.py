"""The signing service over an HSM key: a lost session object sends the request cold, once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from keystore import PKCS11_KIND
from keystore.pkcs11.token import MODULE_CALLS
from signserv.host.config import load_settings
from signserv.host.home import initialize_home, open_failure_counters, open_keystore
from signserv.secret import Secret
from signserv.server.lockout import LockoutGuard, LockoutSettings
from signserv.server.signing import SigningService
from signserv.server.unlock_cache import UnlockCache
from signserv.tke.wire.signed_input import InputKind, SignedInput

from ...conftest import FAST_CONFIG
from ...softhsm import SoftHsm

TOKEN = "hsm-token-0123456789abcdef"
DIGEST = hashlib.sha512(b"a TKE command").digest()


def test_a_lost_hsm_session_makes_one_request_go_cold_and_it_is_signed(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(FAST_CONFIG + softhsm.config())
    settings = load_settings(tmp_path / "home", config)
    initialize_home(settings)
    store = open_keystore(settings)
    info = store.create_key("hsm", TOKEN, kind=PKCS11_KIND)
    unlocks: list[bool] = []
    service = SigningService(
        store,
        UnlockCache(300, 16),
        LockoutGuard(open_failure_counters(settings), LockoutSettings()),
        lambda hit: unlocks.append(not hit),
        cold_request_slots=4,
    )
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), info.public_point)

    def sign() -> None:
        signature = service.sign_digest(
            "hsm", Secret(TOKEN), DIGEST, "127.0.0.1", None, SignedInput(InputKind.OPAQUE)
        )
        public_key.verify(signature, DIGEST, ec.ECDSA(Prehashed(hashes.SHA512())))

    sign()
    sign()
    assert unlocks == [True, False]  # cold, then warm
    with MODULE_CALLS:  # the HSM drops every session, the unwrapped key with them
        pkcs11.lib(str(softhsm.module)).reinitialize()
    sign()
    assert unlocks == [True, False, False, True]  # warm, lost, then cold with the token
    sign()
    assert unlocks[-1] is False
