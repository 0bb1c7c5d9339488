"""An optional per-address request rate limit (token bucket), kept in each worker's memory.

DESIGN §5 makes it optional; brute force is handled by the shared lockout. This only caps how
fast one address may call the contract endpoints of one worker, so with N workers an address
gets at most N times the rate. Memory is bounded: the least recently seen addresses are forgotten.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_TRACKED_ADDRESSES = 10_000


class RateLimiter:
    """``rate`` requests per second per address with bursts up to ``burst``."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int:
        """0 if a request from ``address`` may go now (and count it), else seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(address, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            allowed = tokens >= 1.0
            self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > MAX_TRACKED_ADDRESSES:
                self._buckets.popitem(last=False)
        return 0 if allowed else max(1, math.ceil((1.0 - tokens) / self._rate))
