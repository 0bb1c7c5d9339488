"""A real SoftHSM2 token for the tests: a fresh token directory and user PIN per test session.

SoftHSM2 reads ``SOFTHSM2_CONF`` when a process loads it, so the session fixture sets it in
this process's environment (and so in every `signserv` subprocess a test starts). Where the
module is not installed the HSM tests skip, except in CI (``CI=true``), where they fail: `.ci/run`
installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN_LABEL = "signserv-tests"
USER_PIN = "user-pin-0123"  # a test token's PIN, not a secret of anything real


@dataclass(frozen=True)
class SoftHsm:
    """An initialised SoftHSM2 token and the files that reach it."""

    module: Path
    conf: Path
    token_directory: Path
    pin_file: Path

    def config(self, *, use_for_new_keys: bool = False, pin_file: Path | None = None) -> str:
        """The ``pkcs11`` section of a signserv config for this token."""
        return (
            "pkcs11:\n"
            f"  module: {self.module}\n"
            f"  token_label: {TOKEN_LABEL}\n"
            f"  user_pin_file: {pin_file or self.pin_file}\n"
            f"  use_for_new_keys: {'true' if use_for_new_keys else 'false'}\n"
        )


def require_softhsm() -> None:
    """Skip (fail in CI) unless SoftHSM2 and python-pkcs11 are installed."""
    missing = [
        what
        for what, present in (
            (f"SoftHSM2 ({SOFTHSM_MODULE}, apt-get install softhsm2)", SOFTHSM_MODULE.is_file()),
            ("softhsm2-util", shutil.which("softhsm2-util") is not None),
        )
        if not present
    ]
    try:
        import pkcs11  # noqa: F401 - the optional dependency under test
    except ImportError:
        missing.append("python-pkcs11 (pip install 'signserv[pkcs11]')")
    if not missing:
        return
    reason = "needs " + " and ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the HSM tests: {reason}")
    pytest.skip(reason)


def start_softhsm(directory: Path) -> SoftHsm:
    """A SoftHSM2 configuration in ``directory`` with one fresh token, made this process's own."""
    softhsm = init_softhsm(directory)
    os.environ["SOFTHSM2_CONF"] = str(softhsm.conf)
    return softhsm


def init_softhsm(directory: Path) -> SoftHsm:
    """A SoftHSM2 configuration in ``directory`` with one freshly initialised token.

    This process keeps using its own; pass ``SOFTHSM2_CONF`` to a subprocess to use this one.
    """
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    subprocess.run(
        [
            shutil.which("softhsm2-util") or "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--pin",
            USER_PIN,
            "--so-pin",
            "so-pin-0123",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    pin_file = directory / "user-pin"
    pin_file.write_text(USER_PIN + "\n")
    pin_file.chmod(0o600)
    return SoftHsm(SOFTHSM_MODULE, conf, tokens, pin_file)
