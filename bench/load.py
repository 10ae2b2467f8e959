"""Concurrent throughput over a bounded time, and percentiles."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

#: One request; returns how many runs it got back, raises on a bad answer.
Call = Callable[[], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Throughput:
    """Requests completed by concurrent clients within a fixed time."""

    clients: int
    seconds: float
    requests: int
    errors: int
    rps: float
    #: How many of the errors each kind of failure accounts for.
    failures: dict[str, int]


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


async def concurrent(call: Call, *, clients: int, seconds: float) -> Throughput:
    """Requests/s of ``clients`` loops calling back to back for ``seconds``."""
    done = errors = 0
    failures: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            try:
                await call()
            except Exception as exc:
                errors += 1
                failures[f"{type(exc).__name__}: {exc}"[:200]] += 1
            else:
                done += 1

    started = time.perf_counter()
    # every loop stops at the deadline; the margin only bounds a hung request
    async with asyncio.timeout(seconds + 30):
        await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return Throughput(
        clients=clients,
        seconds=elapsed,
        requests=done,
        errors=errors,
        rps=done / elapsed,
        failures=dict(failures),
    )
