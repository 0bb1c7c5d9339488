"""Sampling a process tree's resident memory in the background to find its peak during a phase."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from signserv.bench.process_tree import tree_rss_bytes

SAMPLE_INTERVAL_SECONDS = 0.05


@dataclass
class PeakRss:
    """The largest resident set size seen so far, and how many samples it was chosen from."""

    peak_bytes: int = 0
    samples: int = 0


@contextmanager
def sampling_peak_rss(root: int) -> Iterator[PeakRss]:
    """Sample ``tree_rss_bytes(root)`` every 50 ms while the block runs."""
    peak = PeakRss()
    stop = threading.Event()

    def sample() -> None:
        while True:
            peak.peak_bytes = max(peak.peak_bytes, tree_rss_bytes(root))
            peak.samples += 1
            if stop.wait(SAMPLE_INTERVAL_SECONDS):
                return

    thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
