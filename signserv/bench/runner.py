"""One benchmark run: raw OpenSSL rate, then a throwaway service driven through every phase."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from signserv.bench.bench_home import SMOKE_KDF, make_bench_home
from signserv.bench.openssl_speed import measure_sign_rate
from signserv.bench.phases import first_requests, flood, sign_load, warm_up
from signserv.bench.report import BenchReport
from signserv.bench.service_process import running_service
from signserv.bench.sign_requests import SameRequest, UnknownKeyRequests, sign_request
from signserv.bench.wrk_driver import wrk_path
from signserv.config import KdfSettings
from signserv.errors import SignservError

LATENCY_CONNECTIONS = (1, 8, 32)
COLD_STEADY_CONNECTIONS = 4
WARM_UP_SECONDS = 1
WARM_KEY = "bench-warm"
FLOOD_KEY = "flood-target"


class WrkMissing(SignservError):
    """wrk was asked for but is not installed."""


@dataclass(frozen=True)
class BenchOptions:
    """Durations and service shape of a run; the defaults are the documented full run."""

    phase_seconds: int = 10
    flood_seconds: int = 20
    openssl_seconds: int = 5
    cold_keys: int = 5
    workers: int = 2
    load_generator: str = "auto"
    kdf: KdfSettings = field(default_factory=KdfSettings)
    smoke: bool = False


SMOKE_OPTIONS = BenchOptions(
    phase_seconds=1, flood_seconds=1, openssl_seconds=1, cold_keys=2, kdf=SMOKE_KDF, smoke=True
)


def _wrk_for(load_generator: str) -> str | None:
    if load_generator == "builtin":
        return None
    wrk = wrk_path()
    if wrk is None and load_generator == "wrk":
        raise WrkMissing(
            "wrk is not installed (apt-get install wrk), or use --load-generator builtin"
        )
    return wrk


def run_benchmark(options: BenchOptions, progress: Callable[[str], None]) -> BenchReport:
    """Measure everything the report holds in one run; ``progress`` hears what runs now."""
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    wrk = _wrk_for(options.load_generator)
    progress(f"openssl: P-521 signing on {cores} cores for {options.openssl_seconds} s")
    openssl = measure_sign_rate(options.openssl_seconds, cores)
    cold_names = [f"cold-{number}" for number in range(options.cold_keys)]
    wrong_token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="signserv-bench-") as directory:
        progress("creating a throwaway home and its keys")
        home = make_bench_home(Path(directory), options.kdf, [WARM_KEY, FLOOD_KEY, *cold_names])
        log = Path(directory) / "serve.log"
        with running_service(home.home, home.config_file, options.workers, log) as service:
            progress("warm-up: every worker caches the signing keys")
            warmed = warm_up(
                service,
                {name: home.tokens[name] for name in (WARM_KEY, FLOOD_KEY)},
                WARM_UP_SECONDS,
            )
            warm = {}
            for connections in LATENCY_CONNECTIONS:
                progress(f"warm signing at {connections} connections")
                warm[str(connections)] = sign_load(
                    service,
                    WARM_KEY,
                    home.tokens[WARM_KEY],
                    connections,
                    options.phase_seconds,
                    wrk,
                )
            progress("first request with each of fresh keys")
            cold_first = first_requests(service, {name: home.tokens[name] for name in cold_names})
            flood_token = home.tokens[FLOOD_KEY]
            legitimate = sign_request(service.host, FLOOD_KEY, flood_token.reveal())
            progress(f"flood of wrong tokens on {FLOOD_KEY} for {options.flood_seconds} s")
            wrong_token_flood = flood(
                service,
                SameRequest(sign_request(service.host, FLOOD_KEY, wrong_token)),
                legitimate,
                options.flood_seconds,
            )
            progress(f"flood of unknown key names for {options.flood_seconds} s")
            unknown_key_flood = flood(
                service,
                UnknownKeyRequests(service.host, "no-such-key", wrong_token),
                legitimate,
                options.flood_seconds,
            )
        with running_service(
            home.home, home.config_without_cache(), options.workers, log
        ) as uncached:
            progress("steady signing with the unlocked-key cache off")
            cold_steady = sign_load(
                uncached,
                WARM_KEY,
                home.tokens[WARM_KEY],
                COLD_STEADY_CONNECTIONS,
                options.phase_seconds,
                wrk,
            )
    return BenchReport(
        cores=cores,
        load_average_before=load_before,
        load_average_after=os.getloadavg()[0],
        kdf=options.kdf.parameters().as_record(),
        workers=options.workers,
        smoke=options.smoke,
        openssl=openssl,
        warm=warm,
        cold_first=cold_first,
        cold_steady=cold_steady,
        warm_up=warmed,
        wrong_token_flood=wrong_token_flood,
        unknown_key_flood=unknown_key_flood,
    )
