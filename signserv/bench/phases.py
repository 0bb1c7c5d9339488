"""The benchmark's phases against a running service; each returns what its load generator saw."""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from signserv.bench.http_load import LoadPlan, LoadResult, RequestSource, run_load
from signserv.bench.process_tree import tree_cpu_seconds
from signserv.bench.rss_sampler import sampling_peak_rss
from signserv.bench.service_process import ServiceProcess
from signserv.bench.sign_requests import SIGN_BODY, SameRequest, sign_request
from signserv.bench.slow_connections import SlowPlan, SlowResult, hold_slow_connections
from signserv.bench.summary import LoadSummary, summarize
from signserv.bench.wrk_driver import run_wrk
from signserv.secret import Secret

OK = (200,)
# A wrong token is refused with 401 after an argon2id run, or 429 by the lockout before one;
# a cold request beyond the worker's cold slots gets 503 at once.
REFUSED_OR_BUSY = (401, 429, 503)
SLOW_SOURCE_ADDRESS = "127.0.0.2"
FLOOD_SOURCE_ADDRESSES = tuple(f"127.0.0.{host}" for host in range(3, 11))
FLOOD_CONNECTIONS_PER_ADDRESS = 2
LEGITIMATE_PAUSE_SECONDS = 0.05
MAX_REQUESTS_PER_PHASE = 2_000_000
# Each warm-up request comes on a new connection, and the workers race to accept it, so a
# second of them reaches every worker.
WARM_UP_CONNECTIONS = 16


@dataclass(frozen=True)
class FloodSummary:
    """A flood, what the service answered it, its peak memory, and a legitimate client meanwhile."""

    attack: LoadSummary
    legitimate: LoadSummary
    peak_rss_mib: float
    argon2id_runs: int
    refused_before_argon2id: int


def _plan(
    service: ServiceProcess, requests: RequestSource, connections: int, seconds: float
) -> LoadPlan:
    return LoadPlan(
        host="127.0.0.1",
        port=service.port,
        requests=requests,
        connections=connections,
        seconds=seconds,
        max_requests=MAX_REQUESTS_PER_PHASE,
    )


def sign_load(
    service: ServiceProcess,
    key: str,
    token: Secret[str],
    connections: int,
    seconds: int,
    wrk: str | None,
) -> LoadSummary:
    """POST /sign with the right token from ``connections`` connections; service CPU per request."""
    cpu_before = tree_cpu_seconds(service.pid)
    if wrk is not None:
        url = f"{service.url}/sign/{key}"
        summary = run_wrk(wrk, url, token.reveal(), SIGN_BODY, connections, seconds)
    else:
        request = SameRequest(sign_request(service.host, key, token.reveal()))
        summary = summarize(
            run_load(_plan(service, request, connections, seconds)), connections, OK
        )
    cpu_ms = (tree_cpu_seconds(service.pid) - cpu_before) * 1000
    per_request = round(cpu_ms / summary.requests, 3) if summary.requests else None
    return dataclasses.replace(summary, service_cpu_ms_per_request=per_request)


@dataclass(frozen=True)
class RequestCycle:
    """Request source: the i-th request is ``requests[i mod len(requests)]``."""

    requests: tuple[bytes, ...]

    def __call__(self, number: int) -> bytes:
        return self.requests[number % len(self.requests)]


def _one_request_per_key(
    service: ServiceProcess, tokens: dict[str, Secret[str]], close: bool = False
) -> RequestCycle:
    return RequestCycle(
        tuple(
            sign_request(service.host, name, token.reveal(), close)
            for name, token in tokens.items()
        )
    )


def first_requests(service: ServiceProcess, tokens: dict[str, Secret[str]]) -> LoadSummary:
    """One request per key that was never used, one after another: each misses every cache."""
    source = _one_request_per_key(service, tokens)
    plan = dataclasses.replace(
        _plan(service, source, 1, seconds=60.0), max_requests=len(source.requests)
    )
    return summarize(run_load(plan), 1, OK)


def warm_up(service: ServiceProcess, tokens: dict[str, Secret[str]], seconds: int) -> LoadSummary:
    """Sign with every key, a new connection each time, so that every worker caches every key."""
    source = _one_request_per_key(service, tokens, close=True)
    plan = _plan(service, source, WARM_UP_CONNECTIONS, seconds)
    # Until a worker has unlocked a key, first requests beyond its cold slots are shed with 503
    # (Retry-After); the warm-up goes on asking, so those are expected, not errors.
    return summarize(run_load(plan), WARM_UP_CONNECTIONS, (*OK, 503))


_Plan = TypeVar("_Plan")
_Background = TypeVar("_Background")


def _beside_legitimate_client(
    service: ServiceProcess,
    background: Callable[[_Plan], _Background],
    plan: _Plan,
    legitimate: bytes,
    seconds: float,
) -> tuple[_Background, LoadResult, float]:
    """Run ``background(plan)`` in a child process while a client signs, one paced request after
    another; its result, the client's, and the service's peak RSS in MiB meanwhile.

    The child has its own event loop, so that it does not delay the legitimate client's.
    """
    legitimate_plan = dataclasses.replace(
        _plan(service, SameRequest(legitimate), 1, seconds), pause_seconds=LEGITIMATE_PAUSE_SECONDS
    )
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pool.submit(int).result()  # start the child before the clock does
        with sampling_peak_rss(service.pid) as peak:
            background_run = pool.submit(background, plan)
            legitimate_result = run_load(legitimate_plan)
            background_result = background_run.result()
    return background_result, legitimate_result, round(peak.peak_bytes / 2**20, 1)


def flood(
    service: ServiceProcess,
    attack: RequestSource,
    legitimate: bytes,
    seconds: int,
    connections_per_address: int = FLOOD_CONNECTIONS_PER_ADDRESS,
) -> FloodSummary:
    """Run ``attack`` from several loopback addresses for ``seconds`` while a client signs."""
    attack_plan = dataclasses.replace(
        _plan(service, attack, connections_per_address * len(FLOOD_SOURCE_ADDRESSES), seconds),
        source_addresses=FLOOD_SOURCE_ADDRESSES,
    )
    attack_result, legitimate_result, peak_rss_mib = _beside_legitimate_client(
        service, run_load, attack_plan, legitimate, seconds
    )
    return FloodSummary(
        attack=summarize(attack_result, attack_plan.connections, REFUSED_OR_BUSY),
        legitimate=summarize(legitimate_result, 1, OK),
        peak_rss_mib=peak_rss_mib,
        argon2id_runs=attack_result.statuses[401],
        refused_before_argon2id=attack_result.statuses[429] + attack_result.statuses[503],
    )


@dataclass(frozen=True)
class SlowConnectionSummary:
    """Idle and slow connections from one address, and a legitimate client meanwhile."""

    count: int
    source_address: str
    held: SlowResult
    legitimate: LoadSummary
    peak_rss_mib: float


def slow_connections(
    service: ServiceProcess, count: int, legitimate: bytes, seconds: int
) -> SlowConnectionSummary:
    """Hold ``count`` idle or trickling connections from 127.0.0.2 while a client signs."""
    plan = SlowPlan("127.0.0.1", service.port, SLOW_SOURCE_ADDRESS, count, seconds)
    held, legitimate_result, peak_rss_mib = _beside_legitimate_client(
        service, hold_slow_connections, plan, legitimate, seconds
    )
    return SlowConnectionSummary(
        count=count,
        source_address=SLOW_SOURCE_ADDRESS,
        held=held,
        legitimate=summarize(legitimate_result, 1, OK),
        peak_rss_mib=peak_rss_mib,
    )
