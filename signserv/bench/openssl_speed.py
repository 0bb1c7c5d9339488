"""The raw P-521 signing rate of this machine on all cores, the yardstick for the service.

``openssl speed -multi N ecdsap521`` when the openssl tool is installed; otherwise the same
OpenSSL code through ``cryptography``, one process per core.
"""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from signserv.errors import SignservError


class SignRateUnavailable(SignservError):
    """The raw signing rate could not be measured."""


@dataclass(frozen=True)
class SignRate:
    """Signatures per second over all cores, and what measured it."""

    per_second: float
    source: str


def _openssl_sign_rate(openssl: str, seconds: int, cores: int) -> float:
    command = [openssl, "speed", "-mr", "-seconds", str(seconds), "ecdsap521"]
    if cores > 1:
        command[2:2] = ["-multi", str(cores)]
    result = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
        command, capture_output=True, text=True, timeout=seconds * 4 + 30, check=False
    )
    # Machine-readable totals: "+F4:<index>:521:<sign/s>:<verify/s>"; with -multi the last
    # such line (without a "Got:" prefix) sums every process.
    totals = [line for line in result.stdout.splitlines() if line.startswith("+F4:")]
    if result.returncode != 0 or not totals:
        raise SignRateUnavailable(f"openssl speed failed: {result.stderr.strip()[:200]}")
    return float(totals[-1].split(":")[3])


def _signatures_within(seconds: float) -> int:
    """Sign SHA-512 digests of a short message back to back for ``seconds``; the count."""
    key = ec.generate_private_key(ec.SECP521R1())
    algorithm = ec.ECDSA(hashes.SHA512())
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        key.sign(b"signserv bench", algorithm)
        count += 1
    return count


def _cryptography_sign_rate(seconds: int, cores: int) -> float:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=cores, mp_context=context) as pool:
        counts = list(pool.map(_signatures_within, [float(seconds)] * cores))
    return sum(counts) / seconds


def measure_sign_rate(seconds: int, cores: int) -> SignRate:
    """P-521 signatures per second with ``cores`` processes signing for ``seconds``."""
    openssl = shutil.which("openssl")
    if openssl is not None:
        return SignRate(
            _openssl_sign_rate(openssl, seconds, cores), f"openssl speed -multi {cores}"
        )
    return SignRate(
        _cryptography_sign_rate(seconds, cores), f"cryptography (OpenSSL), {cores} processes"
    )
