"""Many idle and slow connections from one address, held open for a while (issue 17).

Half the connections send nothing; the other half send a request head one byte a second. Each
is reopened as soon as the service closes it, so the service faces ``count`` of them for the
whole phase. Bounded in time; run in a child process beside a legitimate client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from signserv.server.gunicorn_runner import allow_descriptors_up_to_the_hard_limit

TRICKLE_INTERVAL_SECONDS = 1.0
_TRICKLED_HEAD = b"POST /sign/bench-slow HTTP/1.1\r\nHost: bench\r\nX-Slow: " + b"a" * 4096


@dataclass(frozen=True)
class SlowPlan:
    """Where to connect, from which address, how many connections and for how long."""

    host: str
    port: int
    source_address: str
    count: int
    seconds: float


@dataclass(frozen=True)
class SlowResult:
    """How often a connection was opened, and how often the service closed one."""

    opened: int
    closed_by_service: int
    failed_to_open: int


async def _hold(plan: SlowPlan, number: int, deadline: float, tally: dict[str, int]) -> None:
    """Keep one connection open until ``deadline``, idle (even ``number``) or trickling (odd)."""
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(
                plan.host, plan.port, local_addr=(plan.source_address, 0)
            )
        except OSError:
            tally["failed_to_open"] += 1
            await asyncio.sleep(TRICKLE_INTERVAL_SECONDS)
            continue
        tally["opened"] += 1
        sent = 0
        try:
            while time.monotonic() < deadline:
                if number % 2:
                    writer.write(_TRICKLED_HEAD[sent : sent + 1])
                    sent = (sent + 1) % len(_TRICKLED_HEAD)
                with contextlib.suppress(asyncio.TimeoutError):
                    if not await asyncio.wait_for(reader.read(1), TRICKLE_INTERVAL_SECONDS):
                        tally["closed_by_service"] += 1
                        break
        except OSError:
            tally["closed_by_service"] += 1
        finally:
            writer.close()


async def _hold_all(plan: SlowPlan) -> SlowResult:
    tally = {"opened": 0, "closed_by_service": 0, "failed_to_open": 0}
    deadline = time.monotonic() + plan.seconds
    await asyncio.gather(*(_hold(plan, number, deadline, tally) for number in range(plan.count)))
    return SlowResult(**tally)


def hold_slow_connections(plan: SlowPlan) -> SlowResult:
    """Blocking form, for a child process; lifts this process's descriptor limit to its maximum."""
    allow_descriptors_up_to_the_hard_limit()
    return asyncio.run(_hold_all(plan))
