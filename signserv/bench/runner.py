"""One benchmark run: raw OpenSSL rate, then a throwaway service driven through every phase."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from signserv.bench.bench_home import SMOKE_KDF, BenchHome, erase_bench_keystore, make_bench_home
from signserv.bench.openssl_speed import measure_sign_rate
from signserv.bench.phases import (
    FloodSummary,
    SlowConnectionSummary,
    first_requests,
    flood,
    sign_load,
    slow_connections,
    warm_up,
)
from signserv.bench.report import BenchReport
from signserv.bench.service_process import ServiceProcess, running_service
from signserv.bench.sign_requests import SameRequest, UnknownKeyRequests, sign_request
from signserv.bench.softhsm_token import softhsm_token
from signserv.bench.summary import LoadSummary
from signserv.bench.wrk_driver import wrk_path
from signserv.errors import SignservError
from signserv.host.config import KdfSettings

LATENCY_CONNECTIONS = (1, 8, 32)
COLD_STEADY_CONNECTIONS = 4
# Issue 17: 64 connections naming unknown keys (8 addresses, 8 each) once held every thread.
COLD_FLOOD_CONNECTIONS_PER_ADDRESS = 8
WARM_UP_SECONDS = 1
WARM_KEY = "bench-warm"
HSM_KEY = "bench-hsm"
HSM_CONNECTIONS = 8
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
    slow_connections: int = 1000
    workers: int = 2
    load_generator: str = "auto"
    kdf: KdfSettings = field(default_factory=KdfSettings)
    smoke: bool = False
    backend: str = "sqlite"
    keystore: Mapping[str, str] = field(default_factory=dict)
    """The config's keystore section: empty for SQLite, a ``url`` for PostgreSQL."""


SMOKE_OPTIONS = BenchOptions(
    phase_seconds=1,
    flood_seconds=1,
    openssl_seconds=1,
    cold_keys=2,
    slow_connections=32,
    kdf=SMOKE_KDF,
    smoke=True,
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


def _warm_phases(
    service: ServiceProcess, home: BenchHome, options: BenchOptions, wrk: str | None
) -> tuple[LoadSummary, dict[str, LoadSummary], LoadSummary | None]:
    """The warm-up, then warm signing at each connection count, then with the HSM-backed key
    (None without an HSM)."""
    signing_keys = {name: home.tokens[name] for name in (WARM_KEY, FLOOD_KEY, HSM_KEY)}
    warmed = warm_up(service, signing_keys, WARM_UP_SECONDS)
    warm = {}
    for connections in LATENCY_CONNECTIONS:
        warm[str(connections)] = sign_load(
            service, WARM_KEY, home.tokens[WARM_KEY], connections, options.phase_seconds, wrk
        )
    hsm = (
        sign_load(
            service, HSM_KEY, home.tokens[HSM_KEY], HSM_CONNECTIONS, options.phase_seconds, wrk
        )
        if HSM_KEY in home.tokens
        else None
    )
    return warmed, warm, hsm


def _hostile_phases(
    service: ServiceProcess, home: BenchHome, options: BenchOptions
) -> tuple[FloodSummary, FloodSummary, SlowConnectionSummary]:
    """Wrong tokens on the flood key, unknown key names over 64 connections, then idle and slow
    connections from one address, each with a legitimate client signing meanwhile."""
    seconds = options.flood_seconds
    wrong_token = secrets.token_urlsafe(32)
    legitimate = sign_request(service.host, FLOOD_KEY, home.tokens[FLOOD_KEY].reveal())
    wrong_tokens = SameRequest(sign_request(service.host, FLOOD_KEY, wrong_token))
    unknown_keys = UnknownKeyRequests(service.host, "no-such-key", wrong_token)
    return (
        flood(service, wrong_tokens, legitimate, seconds),
        flood(service, unknown_keys, legitimate, seconds, COLD_FLOOD_CONNECTIONS_PER_ADDRESS),
        slow_connections(service, options.slow_connections, legitimate, seconds),
    )


def run_benchmark(options: BenchOptions, progress: Callable[[str], None]) -> BenchReport:
    """Measure everything the report holds in one run; ``progress`` hears what runs now."""
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    wrk = _wrk_for(options.load_generator)
    progress(f"openssl: P-521 signing on {cores} cores for {options.openssl_seconds} s")
    openssl = measure_sign_rate(options.openssl_seconds, cores)
    cold_names = [f"cold-{number}" for number in range(options.cold_keys)]
    with (
        tempfile.TemporaryDirectory(prefix="signserv-bench-") as directory,
        softhsm_token(Path(directory)) as hsm_token,
    ):
        progress(f"creating a throwaway home and its keys; SoftHSM2 {hsm_token.status}")
        home = make_bench_home(
            Path(directory),
            options.kdf,
            [WARM_KEY, FLOOD_KEY, *cold_names],
            hsm_token.section,
            (HSM_KEY,),
            options.keystore,
        )
        try:
            log = Path(directory) / "serve.log"
            with running_service(home.home, home.config_file, options.workers, log) as service:
                progress("warm-up, then warm signing at 1, 8 and 32 connections, then HSM-backed")
                warmed, warm, hsm = _warm_phases(service, home, options, wrk)
                progress(f"first request with each of {options.cold_keys} fresh keys")
                cold_first = first_requests(
                    service, {name: home.tokens[name] for name in cold_names}
                )
                progress(
                    f"floods of wrong tokens, then unknown key names, then {options.slow_connections} "
                    f"idle and slow connections, {options.flood_seconds} s each"
                )
                wrong_token_flood, unknown_key_flood, slow = _hostile_phases(service, home, options)
            logged_config = home.config_with_server("access-log", access_log=True)
            with running_service(home.home, logged_config, options.workers, log) as logged:
                progress("warm signing at 8 connections with gunicorn's access log on, to compare")
                warm_up(logged, {WARM_KEY: home.tokens[WARM_KEY]}, WARM_UP_SECONDS)
                access_logged = sign_load(
                    logged, WARM_KEY, home.tokens[WARM_KEY], 8, options.phase_seconds, wrk
                )
            uncached_config = home.config_with_server("no-cache", unlock_cache_seconds=0)
            with running_service(home.home, uncached_config, options.workers, log) as uncached:
                progress("steady signing with the unlocked-key cache off")
                cold_steady = sign_load(
                    uncached,
                    WARM_KEY,
                    home.tokens[WARM_KEY],
                    COLD_STEADY_CONNECTIONS,
                    options.phase_seconds,
                    wrk,
                )
        finally:
            erase_bench_keystore(home)
    return BenchReport(
        cores=cores,
        load_average_before=load_before,
        load_average_after=os.getloadavg()[0],
        kdf=options.kdf.parameters().as_record(),
        workers=options.workers,
        smoke=options.smoke,
        backend=options.backend,
        openssl=openssl,
        warm_up=warmed,
        warm=warm,
        hsm=hsm,
        hsm_status=hsm_token.status,
        cold_first=cold_first,
        wrong_token_flood=wrong_token_flood,
        unknown_key_flood=unknown_key_flood,
        slow_connections=slow,
        cold_steady=cold_steady,
        warm_with_access_log=access_logged,
    )
