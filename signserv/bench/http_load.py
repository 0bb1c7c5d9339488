"""The built-in load generator: HTTP/1.1 over asyncio streams, bounded in time and in count.

Used for every phase when wrk is absent, and always where wrk cannot go: requests that change
each time and connections bound to chosen loopback source addresses (the flood).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

REQUEST_TIMEOUT_SECONDS = 30.0

RequestSource = Callable[[int], bytes]
# What a refused connection, a dropped one, a hung server or a garbled answer raise.
_TRANSPORT_FAILURES = (
    OSError,
    EOFError,
    asyncio.TimeoutError,
    asyncio.LimitOverrunError,
    ValueError,
)


@dataclass(frozen=True)
class LoadPlan:
    """Who sends what, how hard and for how long; picklable so a child process can run it."""

    host: str
    port: int
    requests: RequestSource
    connections: int
    seconds: float
    max_requests: int
    source_addresses: tuple[str, ...] = ()
    pause_seconds: float = 0.0


@dataclass
class LoadResult:
    """Answers by status, transport failures by kind, and the latency of every answer (seconds)."""

    statuses: Counter[int] = field(default_factory=Counter)
    socket_errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0


class ProtocolViolation(ValueError):
    """The server's answer was not the HTTP/1.1 this client understands."""


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; its status and whether the server closes the connection after it."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolViolation("not an HTTP/1.x status line")
    length, closes = 0, parts[0] == b"HTTP/1.0"
    for line in header_lines:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closes = value.strip().lower() == b"close"
    await reader.readexactly(length)
    return int(parts[1]), closes


async def _open(
    plan: LoadPlan, source: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    local_address = (source, 0) if source else None
    return await asyncio.open_connection(plan.host, plan.port, local_addr=local_address)


async def _exchange(
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
) -> tuple[int, bool]:
    streams[1].write(request)
    return await _read_response(streams[0])


async def _drive_connection(
    plan: LoadPlan, numbers: Iterator[int], deadline: float, source: str | None, result: LoadResult
) -> None:
    """Send requests one after another on one connection, reconnecting when the server closes."""
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    for number in numbers:
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        closes = True
        try:
            if streams is None:
                streams = await asyncio.wait_for(_open(plan, source), REQUEST_TIMEOUT_SECONDS)
            status, closes = await asyncio.wait_for(
                _exchange(streams, plan.requests(number)), REQUEST_TIMEOUT_SECONDS
            )
        except _TRANSPORT_FAILURES as exc:
            result.socket_errors[type(exc).__name__] += 1
        else:
            result.latencies.append(time.perf_counter() - started)
            result.statuses[status] += 1
        if closes and streams is not None:
            streams[1].close()
            streams = None
        if plan.pause_seconds:
            await asyncio.sleep(plan.pause_seconds)
    if streams is not None:
        streams[1].close()


async def drive(plan: LoadPlan) -> LoadResult:
    """Run ``plan`` to its time or count limit, whichever comes first."""
    result = LoadResult()
    numbers = iter(range(plan.max_requests))
    sources: Iterator[str | None] = (
        itertools.cycle(plan.source_addresses) if plan.source_addresses else itertools.repeat(None)
    )
    started = time.monotonic()
    deadline = started + plan.seconds
    await asyncio.gather(
        *(
            _drive_connection(plan, numbers, deadline, next(sources), result)
            for _ in range(plan.connections)
        )
    )
    result.elapsed = time.monotonic() - started
    return result


def run_load(plan: LoadPlan) -> LoadResult:
    """Blocking form of :func:`drive`, for a thread or a child process."""
    return asyncio.run(drive(plan))
