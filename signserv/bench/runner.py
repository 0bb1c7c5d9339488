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
from signserv.bench.phases import FloodSummary, first_requests, flood, sign_load, warm_up
from signserv.bench.report import BenchReport
from signserv.bench.service_process import ServiceProcess, running_service
from signserv.bench.sign_requests import SameRequest, UnknownKeyRequests, sign_request
from signserv.bench.summary import LoadSummary
from signserv.bench.wrk_driver import wrk_path
from signserv.errors import SignservError
from signserv.host.config import KdfSettings

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
    backend: str = "sqlite"
    keystore: Mapping[str, str] = field(default_factory=dict)
    """The config's keystore section: empty for SQLite, a ``url`` for PostgreSQL."""


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


def _warm_phases(
    service: ServiceProcess, home: BenchHome, options: BenchOptions, wrk: str | None
) -> tuple[LoadSummary, dict[str, LoadSummary]]:
    """The warm-up, then warm signing at each connection count."""
    signing_keys = {name: home.tokens[name] for name in (WARM_KEY, FLOOD_KEY)}
    warmed = warm_up(service, signing_keys, WARM_UP_SECONDS)
    warm = {}
    for connections in LATENCY_CONNECTIONS:
        warm[str(connections)] = sign_load(
            service, WARM_KEY, home.tokens[WARM_KEY], connections, options.phase_seconds, wrk
        )
    return warmed, warm


def _floods(
    service: ServiceProcess, home: BenchHome, seconds: int
) -> tuple[FloodSummary, FloodSummary]:
    """Wrong tokens on the flood key, then unknown key names, each with a legitimate client."""
    wrong_token = secrets.token_urlsafe(32)
    legitimate = sign_request(service.host, FLOOD_KEY, home.tokens[FLOOD_KEY].reveal())
    wrong_tokens = SameRequest(sign_request(service.host, FLOOD_KEY, wrong_token))
    unknown_keys = UnknownKeyRequests(service.host, "no-such-key", wrong_token)
    return (
        flood(service, wrong_tokens, legitimate, seconds),
        flood(service, unknown_keys, legitimate, seconds),
    )


def run_benchmark(options: BenchOptions, progress: Callable[[str], None]) -> BenchReport:
    """Measure everything the report holds in one run; ``progress`` hears what runs now."""
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    wrk = _wrk_for(options.load_generator)
    progress(f"openssl: P-521 signing on {cores} cores for {options.openssl_seconds} s")
    openssl = measure_sign_rate(options.openssl_seconds, cores)
    cold_names = [f"cold-{number}" for number in range(options.cold_keys)]
    with tempfile.TemporaryDirectory(prefix="signserv-bench-") as directory:
        progress("creating a throwaway home and its keys")
        home = make_bench_home(
            Path(directory), options.kdf, [WARM_KEY, FLOOD_KEY, *cold_names], options.keystore
        )
        try:
            figures = _service_phases(home, Path(directory), options, wrk, progress)
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
        warm_up=figures.warm_up,
        warm=figures.warm,
        cold_first=figures.cold_first,
        wrong_token_flood=figures.wrong_token_flood,
        unknown_key_flood=figures.unknown_key_flood,
        cold_steady=figures.cold_steady,
    )


@dataclass(frozen=True)
class _ServiceFigures:
    """What the phases against the service measured."""

    warm_up: LoadSummary
    warm: dict[str, LoadSummary]
    cold_first: LoadSummary
    wrong_token_flood: FloodSummary
    unknown_key_flood: FloodSummary
    cold_steady: LoadSummary


def _service_phases(
    home: BenchHome,
    directory: Path,
    options: BenchOptions,
    wrk: str | None,
    progress: Callable[[str], None],
) -> _ServiceFigures:
    """Every phase against a service over ``home``: cached, then with the unlock cache off."""
    cold_names = [name for name in home.tokens if name.startswith("cold-")]
    log = directory / "serve.log"
    with running_service(home.home, home.config_file, options.workers, log) as service:
        progress("warm-up, then warm signing at 1, 8 and 32 connections")
        warmed, warm = _warm_phases(service, home, options, wrk)
        progress(f"first request with each of {options.cold_keys} fresh keys")
        cold_first = first_requests(service, {name: home.tokens[name] for name in cold_names})
        progress(f"floods of wrong tokens, then unknown key names, {options.flood_seconds} s each")
        wrong_token_flood, unknown_key_flood = _floods(service, home, options.flood_seconds)
    uncached_config = home.config_without_cache()
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
    return _ServiceFigures(
        warm_up=warmed,
        warm=warm,
        cold_first=cold_first,
        wrong_token_flood=wrong_token_flood,
        unknown_key_flood=unknown_key_flood,
        cold_steady=cold_steady,
    )
