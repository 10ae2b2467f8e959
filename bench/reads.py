"""Read scenarios against the SQL floor, the peer and our servers.

Every server is started first; then, scenario by scenario, all targets are
measured interleaved (see ``_interleaved``), so whatever else the machine does
weighs on each of them alike. The machine may be shared: each scenario waits
for foreign CPU load to settle, and is measured again (keeping the least
disturbed attempt) when foreign processes took CPU while it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from .clients import HttpClient, http_client, to_httpx
from .load import Call, concurrent, percentile
from .machine import NOISY_LOAD, ForeignCpu, load_average
from .scenarios import (
    Fixtures,
    count_rows,
    floor_query,
    http_request,
    probe_request,
    serves,
)
from .servers import Server


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How hard and how long each scenario is driven."""

    requests: int = 100
    warmup: int = 20
    clients: int = 16
    seconds: float = 10.0
    attempts: int = 3
    rounds: int = 5
    quiet_wait: float = 60.0
    profile_dir: Path | None = None
    client: str = "aiohttp"
    """The HTTP client (``clients.CLIENTS``)."""


def http_call(
    client: HttpClient, target: str, scenario: str, fx: Fixtures
) -> tuple[Call, Call]:
    """A validating call (parses and counts the runs) and a lean timed call."""
    spec = http_request(target, scenario, fx)

    async def checked() -> int:
        status, body = await client.send(spec)
        if status != 200:
            raise AssertionError(f"{target} {scenario}: HTTP {status} {body[:300]!r}")
        return count_rows(target, scenario, json.loads(body))

    async def lean() -> int:
        status, _ = await client.send(spec)
        if status != 200:
            raise AssertionError(f"{target} {scenario}: HTTP {status}")
        return -1

    return checked, lean


async def _interleaved(
    calls: dict[str, tuple[Call, Call, Call]],
    opts: ReadOptions,
    monitor: ForeignCpu,
    profilers: dict[str, Callable[[], subprocess.Popen[bytes]]],
    pids: dict[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every target's figures for one scenario, taken interleaved.

    With the servers' ``pids``, each server's CPU time (user + sys) per
    request is measured too: over the sequential requests (the other servers
    idle meanwhile) and over its concurrent load slices.

    ``calls`` holds per target a validating call (for the warm-up), a lean one
    (timed one at a time) and one for the concurrent clients. The sequential
    requests go round-robin over the targets, each round starting at the next
    target (so none always follows the same one, whose leftover work or cache
    footprint it would inherit), and the concurrent load runs in ``rounds``
    slices per target, in rotating order, so a disturbance hits every target
    alike. Retried, whole, when foreign load was high.
    """
    targets = list(calls)
    rounds = 1 if profilers else opts.rounds
    best: dict[str, dict[str, Any]] | None = None
    best_load = float("inf")
    for attempt in range(1, opts.attempts + 1):
        await monitor.quiet(opts.quiet_wait)
        rows = {}
        for target, (checked, _, _) in calls.items():
            for _ in range(opts.warmup):
                rows[target] = await checked()
        monitor.start()
        began = time.perf_counter()
        pids = pids or {}
        cpu_before = {t: cpu_seconds(pid) for t, pid in pids.items()}
        timings: dict[str, list[float]] = {t: [] for t in targets}
        client_cpu = dict.fromkeys(targets, 0.0)
        for request in range(opts.requests):
            shift = request % len(targets)
            for target in targets[shift:] + targets[:shift]:
                lean = calls[target][1]
                cpu_started = time.process_time()
                started = time.perf_counter()
                await lean()
                timings[target].append((time.perf_counter() - started) * 1000)
                client_cpu[target] += time.process_time() - cpu_started
        sequential_cpu = {
            t: cpu_seconds(pid) - cpu_before[t] for t, pid in pids.items()
        }
        load_cpu = dict.fromkeys(pids, 0.0)
        done = dict.fromkeys(targets, 0)
        errors = dict.fromkeys(targets, 0)
        failures: dict[str, Counter[str]] = {t: Counter() for t in targets}
        spent = dict.fromkeys(targets, 0.0)
        for round_ in range(rounds):
            shift = round_ % len(targets)
            for target in targets[shift:] + targets[:shift]:
                start_profiler = profilers.get(target) if attempt == 1 else None
                profiler = start_profiler() if start_profiler else None
                cpu_start = cpu_seconds(pids[target]) if target in pids else 0.0
                load = await concurrent(
                    calls[target][2],
                    clients=opts.clients,
                    seconds=opts.seconds / rounds,
                )
                if profiler is not None:
                    await asyncio.to_thread(profiler.wait, opts.seconds + 30)
                if target in pids:
                    load_cpu[target] += cpu_seconds(pids[target]) - cpu_start
                done[target] += load.requests
                errors[target] += load.errors
                failures[target].update(load.failures)
                spent[target] += load.seconds
        foreign = monitor.stop() / (time.perf_counter() - began)
        measured = {
            target: {
                "requests": opts.requests,
                "median_ms": percentile(timings[target], 0.5),
                "p95_ms": percentile(timings[target], 0.95),
                "mean_ms": sum(timings[target]) / len(timings[target]),
                "rows": rows.get(target, 0),
                "rps": done[target] / spent[target],
                "concurrent_requests": done[target],
                "errors": errors[target],
                "failures": dict(failures[target]),
                "clients": opts.clients,
                "foreign_load": foreign,
                "load_average": load_average(),
                "attempts": attempt,
                "cpu_ms": _per_request(sequential_cpu, target, opts.requests),
                "client_cpu_ms": client_cpu[target] * 1000 / opts.requests,
                "load_cpu_ms": _per_request(load_cpu, target, done[target]),
            }
            for target in targets
        }
        if foreign < best_load:
            best, best_load = measured, foreign
        if foreign < NOISY_LOAD:
            break
        print(f"    (foreign load {foreign:.2f} CPU, measuring again)", flush=True)
    assert best is not None
    return best


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _per_request(cpu: dict[str, float], target: str, requests: int) -> float | None:
    """Milliseconds of server CPU per request, None without the server's pid."""
    if target not in cpu or not requests:
        return None
    return cpu[target] * 1000 / requests


def _py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    out.parent.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class _Floor:
    """Raw asyncpg: one connection for latency, a pool of ``clients`` for rps."""

    def __init__(self, dsn: str, clients: int) -> None:
        self.dsn = dsn
        self.clients = clients

    async def __aenter__(self) -> _Floor:
        self.conn = await asyncpg.connect(self.dsn)
        self.pool = await asyncpg.create_pool(
            self.dsn, min_size=self.clients, max_size=self.clients
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.pool.close()
        await self.conn.close()

    def calls(self, scenario: str, fx: Fixtures) -> tuple[Call, Call]:
        sql, args = floor_query(scenario, fx)

        async def single() -> int:
            return min(len(await self.conn.fetch(sql, *args)), 100)

        async def pooled() -> int:
            async with self.pool.acquire() as conn:
                return len(await conn.fetch(sql, *args))

        return single, pooled


async def run_reads(
    targets: list[str],
    dsn: str,
    fx: Fixtures,
    scenarios: list[str],
    opts: ReadOptions,
    *,
    database: str,
    log_dir: Path,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, int]]]:
    """``{scenario: {target: figures}}`` and each server's memory."""
    monitor = ForeignCpu(database)
    results: dict[str, dict[str, Any]] = {s: {} for s in scenarios}
    memory: dict[str, dict[str, int]] = {}
    async with contextlib.AsyncExitStack() as stack:
        floor = None
        if "floor" in targets:
            floor = await stack.enter_async_context(_Floor(dsn, opts.clients))
        servers: dict[str, tuple[Server, HttpClient]] = {}
        for target in targets:
            if target == "floor":
                continue
            server = stack.enter_context(Server(target, dsn, fx.table, log_dir=log_dir))
            client = await stack.enter_async_context(
                http_client(opts.client, server.base_url, opts.clients)
            )
            server.start(to_httpx(probe_request(target), server.base_url))
            monitor.own.add(server.pid)
            memory[target] = {"started_rss_kb": server.memory()["VmRSS"]}
            servers[target] = (server, client)
        for scenario in scenarios:
            calls: dict[str, tuple[Call, Call, Call]] = {}
            profilers: dict[str, Callable[[], subprocess.Popen[bytes]]] = {}
            for target in targets:
                if not serves(target, scenario):
                    continue
                if target == "floor":
                    assert floor is not None
                    single, pooled = floor.calls(scenario, fx)
                    calls[target] = (single, single, pooled)
                    continue
                server, client = servers[target]
                checked, lean = http_call(client, target, scenario, fx)
                calls[target] = (checked, lean, lean)
                if opts.profile_dir is not None:
                    profilers[target] = _profiler(
                        monitor, server.pid, opts, f"{target}-{scenario}"
                    )
            pids = {t: servers[t][0].pid for t in calls if t in servers}
            measured = await _interleaved(calls, opts, monitor, profilers, pids)
            for target, result in measured.items():
                results[scenario][target] = result
                _progress(target, scenario, result)
        for target, (server, _) in servers.items():
            now = server.memory()
            memory[target].update(rss_kb=now["VmRSS"], peak_rss_kb=now["VmHWM"])
    return results, memory


def _profiler(
    monitor: ForeignCpu, pid: int, opts: ReadOptions, name: str
) -> Callable[[], subprocess.Popen[bytes]]:
    assert opts.profile_dir is not None
    out = opts.profile_dir / f"{name}.txt"

    def start() -> subprocess.Popen[bytes]:
        process = _py_spy(pid, opts.seconds, out)
        monitor.own.add(process.pid)
        return process

    return start


def _progress(target: str, scenario: str, result: dict[str, Any]) -> None:
    print(
        f"  {target:19} {scenario:8} median {result['median_ms']:7.2f} ms  "
        f"p95 {result['p95_ms']:7.2f} ms  {result['rps']:8.1f} req/s  "
        f"rows {result['rows']}  errors {result['errors']}  "
        f"foreign load {result['foreign_load']:.2f}",
        flush=True,
    )
    for failure, count in result.get("failures", {}).items():
        print(f"    {count} x {failure}", flush=True)
