"""Prometheus metrics at /metrics, correct across gunicorn workers.

Under `signserv serve` every worker writes its samples to files in a directory the master
prepares (prometheus-client's multiprocess mode), and a scrape of any worker adds them all up.
prometheus-client picks that mode when it is first imported, from ``PROMETHEUS_MULTIPROC_DIR``,
so it is imported here only inside functions: the master sets the variable before forking and
never imports it itself, the workers import it afterwards.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
SIGN_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


PRIVATE_UMASK = 0o077


def prepare_multiprocess_directory(directory: Path) -> None:
    """Start a serve run with an empty samples directory (0700) and point workers at it.

    prometheus-client creates its sample files with the process umask, so this process (the
    gunicorn master, before its workers fork) takes umask 077: the files are 0600 whatever
    umask the service was started with.
    """
    os.umask(PRIVATE_UMASK)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    os.environ[MULTIPROCESS_ENV] = str(directory)


def forget_worker(pid: int) -> None:
    """gunicorn ``child_exit`` hook: drop a dead worker's live gauges (its counters stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class KeystoreSizeCollector:
    """Reports the number of stored keys at scrape time."""

    def __init__(self, count_keys: Callable[[], int]) -> None:
        self._count_keys = count_keys

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily("signserv_keys", "Keys in the keystore", value=self._count_keys())


class Metrics:
    """The service's counters and histogram, and the exposition of all workers' samples."""

    def __init__(self, count_keys: Callable[[], int]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self._registry = CollectorRegistry()
        self._keystore_size = KeystoreSizeCollector(count_keys)
        self.requests = Counter(
            "signserv_requests",
            "Requests by endpoint and status",
            ["endpoint", "status"],
            registry=self._registry,
        )
        self.sign_latency = Histogram(
            "signserv_sign_seconds",
            "Latency of POST /sign, all outcomes",
            buckets=SIGN_LATENCY_BUCKETS,
            registry=self._registry,
        )
        self.auth_failures = Counter(
            "signserv_auth_failures",
            "Requests refused for a missing or wrong token or unknown key",
            registry=self._registry,
        )
        self.lockouts = Counter(
            "signserv_lockouts",
            "Requests refused because their key or address was locked out",
            registry=self._registry,
        )
        self.unlock_cache = Counter(
            "signserv_unlock_cache",
            "Unlocked-key cache lookups by result",
            ["result"],
            registry=self._registry,
        )
        self._registry.register(self._keystore_size)

    def record_cache_result(self, hit: bool) -> None:
        """Count one unlocked-key cache lookup."""
        self.unlock_cache.labels(result="hit" if hit else "miss").inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text format of every worker's samples (or this process's, outside gunicorn)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self._scrape_registry()), CONTENT_TYPE_LATEST

    def _scrape_registry(self) -> CollectorRegistry:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        if MULTIPROCESS_ENV not in os.environ:
            return self._registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(self._keystore_size)
        return registry
