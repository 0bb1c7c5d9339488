"""A throwaway SoftHSM2 token in the bench home, for the warm HSM-backed signing rate (issue 13).

Available where SoftHSM2 and python-pkcs11 are installed; elsewhere the report says why not.
SoftHSM2 finds its tokens through ``SOFTHSM2_CONF``, which is set for the run (the service
inherits it) and restored afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
HSM_TOKEN_LABEL = "signserv-bench"  # noqa: S105 - a label, not a secret
_CONF_ENV = "SOFTHSM2_CONF"


@dataclass(frozen=True)
class HsmToken:
    """The ``pkcs11`` config section that reaches the token, or why there is none."""

    section: dict[str, str] | None
    status: str = "token created for this run"


def missing_parts() -> str:
    """What this machine lacks for a SoftHSM2 token, or '' when nothing."""
    missing = [
        what
        for what, present in (
            (f"SoftHSM2 ({SOFTHSM_MODULE})", SOFTHSM_MODULE.is_file()),
            ("softhsm2-util", shutil.which("softhsm2-util") is not None),
            ("python-pkcs11", importlib.util.find_spec("pkcs11") is not None),
        )
        if not present
    ]
    return " and ".join(missing)


@contextmanager
def softhsm_token(directory: Path) -> Iterator[HsmToken]:
    """A fresh SoftHSM2 token under ``directory`` for the block, if SoftHSM2 is installed."""
    missing = missing_parts()
    if missing:
        yield HsmToken(None, f"unavailable (needs {missing})")
        return
    tokens = directory / "softhsm-tokens"
    tokens.mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    pin_file = directory / "hsm-user-pin"
    pin = secrets.token_urlsafe(16)
    pin_file.write_text(pin + "\n")
    pin_file.chmod(0o600)
    previous = os.environ.get(_CONF_ENV)
    os.environ[_CONF_ENV] = str(conf)
    try:
        # The PINs of a token that lives for one bench run, on the command line as the tool wants.
        initialized = subprocess.run(  # noqa: S603 - SoftHSM2's own tool, no shell
            [
                str(shutil.which("softhsm2-util")),
                *("--init-token", "--free", "--label", HSM_TOKEN_LABEL),
                *("--pin", pin, "--so-pin", secrets.token_urlsafe(16)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if initialized.returncode != 0:
            failure = initialized.stderr.strip()
            yield HsmToken(None, f"unavailable (softhsm2-util failed: {failure})")
            return
        yield HsmToken(
            {
                "module": str(SOFTHSM_MODULE),
                "token_label": HSM_TOKEN_LABEL,
                "user_pin_file": str(pin_file),
            }
        )
    finally:
        if previous is None:
            os.environ.pop(_CONF_ENV, None)
        else:
            os.environ[_CONF_ENV] = previous
