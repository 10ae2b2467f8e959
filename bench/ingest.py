"""Ingest: run events persisted per second, ours against aio-fluid's upsert path.

Each run goes queued -> running -> success, one event per state, from 1 or
32 concurrent producers.

- ours: producers ``submit`` ``RunRecord``s to one ``RunWriter`` over a
  ``HistoryStore`` (the plugin's write path without the TaskRun conversion);
  the rate is the events submitted over the time until the last is committed.
  A ``HistoryStore`` subclass notes when each batch commits, which gives every
  event's lag from submit to committed row.
- peer: producers await ``CrudDB.db_upsert`` exactly as
  ``TaskDbPlugin._handle_update`` calls it, for a fixed time.
- asyncpg: a prepared single-row ``INSERT ... ON CONFLICT`` per event, the
  floor of the one-statement-per-event design.

Lost events: runs whose row is not in its last submitted state afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import sqlalchemy as sa
from fluid.db import CrudDB
from fluid.scheduler import TaskPriority, TaskState
from fluid.scheduler.db import task_meta

from gql_history import HistoryStore, history_table
from gql_history.core.records import RunRecord
from gql_history.db.engine import async_url, create_engine
from gql_history.db.writer import RunWriter

from .load import percentile
from .machine import NOISY_LOAD, ForeignCpu

OURS_TABLE = "ingest_ours"
PEER_TABLE = "ingest_peer"
RAW_TABLE = "ingest_asyncpg"
STATES = (TaskState.queued, TaskState.running, TaskState.success)


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """Sizes and durations of the ingest runs."""

    concurrencies: tuple[int, ...] = (1, 32)
    runs: int = 20_000
    """Runs the producers push through our writer in the saturating test."""
    seconds: float = 10.0
    """Duration of the peer's, the asyncpg and the paced tests."""
    paced_rate: float | None = None
    """Events/s offered in the lag test; 10x the peer's rate at 32 when None."""


@dataclass(slots=True)
class _Run:
    """A synthetic run; ``event(k)`` is its record in its k-th state."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    queued: datetime = field(default_factory=lambda: datetime.now(UTC))

    def event(self, k: int) -> RunRecord:
        state = STATES[k]
        start = self.queued + timedelta(milliseconds=3) if k else None
        end = self.queued + timedelta(milliseconds=20) if k == 2 else None
        return RunRecord(
            id=self.id,
            name="build_report",
            priority=str(TaskPriority.medium),
            state=state,
            queued=self.queued,
            start=start,
            end=end,
            params={"user": "u123", "region": "eu", "n": 17},
            from_run_id="",
            root_run_id="",
            retry_attempt=0,
            error_type=None,
            error_message=None,
            tags=["reports"],
        )


class _LagTracker:
    """Submit times of the events waiting for their run's next commit."""

    def __init__(self) -> None:
        self.waiting: defaultdict[str, list[float]] = defaultdict(list)
        self.lags: list[float] = []
        self.statements = 0
        self.rows = 0

    def submitted(self, run_id: str) -> None:
        self.waiting[run_id].append(time.perf_counter())

    def take(self, run_id: str) -> list[float]:
        return self.waiting.pop(run_id, [])


class _TimedStore(HistoryStore):
    """A store noting when each batch's events are committed (mixed in first).

    A batch is taken from the writer's buffer synchronously right before
    ``upsert`` starts, so the events waiting at that moment are exactly the
    ones its (coalesced) records carry.
    """

    tracker: _LagTracker

    async def upsert(self, records: Sequence[RunRecord]) -> None:
        taken = [self.tracker.take(record.id) for record in records]
        await super().upsert(records)
        committed = time.perf_counter()
        self.tracker.statements += 1
        self.tracker.rows += len(records)
        for times in taken:
            self.tracker.lags.extend(committed - t for t in times)


async def _truncate(dsn: str, table: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'TRUNCATE "{table}"')
    finally:
        await conn.close()


async def _finished_rows(dsn: str, table: str) -> tuple[int, int]:
    """Rows in ``table`` and rows in the final state."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            f"SELECT count(*) AS rows, count(*) FILTER (WHERE state = 'success') "
            f'AS finished FROM "{table}"'
        )
    finally:
        await conn.close()
    assert row is not None
    return row["rows"], row["finished"]


def _lag_summary(lags: list[float]) -> dict[str, float]:
    return {
        "lag_p50_ms": percentile(lags, 0.5) * 1000,
        "lag_p99_ms": percentile(lags, 0.99) * 1000,
        "lag_max_ms": max(lags, default=float("nan")) * 1000,
    }


def _timed(base: type[HistoryStore]) -> type[_TimedStore]:
    if base is HistoryStore:
        return _TimedStore
    return type(f"Timed{base.__name__}", (_TimedStore, base), {})


async def _ours(
    dsn: str,
    concurrency: int,
    *,
    runs: int,
    rate: float | None,
    seconds: float,
    store_class: type[HistoryStore] = HistoryStore,
    table: sa.Table | None = None,
    truncate: bool = True,
) -> dict[str, Any]:
    """Our writer: saturating (``rate`` None, ``runs`` runs) or paced, into
    ``table`` (``ingest_ours`` by default), emptied first with ``truncate``."""
    engine = create_engine(dsn)
    if table is None:
        table = history_table(sa.MetaData(), OURS_TABLE)
    store = _timed(store_class)(engine, table)
    tracker = store.tracker = _LagTracker()
    writer = RunWriter(store)
    peak = 0
    submitted_runs = 0
    # paced: each producer emits one event every `interval` seconds
    interval = concurrency / rate if rate else 0.0
    per_producer = int(seconds / interval) // 3 if rate else 0

    async def producer(index: int) -> None:
        nonlocal peak, submitted_runs
        count = per_producer if rate else len(range(index, runs, concurrency))
        started = time.perf_counter()
        k = 0
        for _ in range(count):
            run = _Run()
            submitted_runs += 1
            for state in range(3):
                if rate:
                    delay = started + k * interval - time.perf_counter()
                    await asyncio.sleep(max(delay, 0))
                    k += 1
                record = run.event(state)
                tracker.submitted(record.id)
                writer.submit(record)
                peak = max(peak, writer.pending)
                if not rate:
                    await asyncio.sleep(0)

    try:
        await store.create_tables()
        if truncate:
            await _truncate(dsn, table.name)
        rows_before, finished_before = await _finished_rows(dsn, table.name)
        async with writer:
            started = time.perf_counter()
            async with asyncio.timeout(seconds * 3 + 120):
                await asyncio.gather(*(producer(i) for i in range(concurrency)))
                produced = time.perf_counter() - started
                await writer.flush()
            elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    rows, finished = await _finished_rows(dsn, table.name)
    # rows there before (without ``truncate``) are not this test's
    rows, finished = rows - rows_before, finished - finished_before
    events = writer.stats.submitted
    return {
        "concurrency": concurrency,
        "mode": "paced" if rate else "saturating",
        "offered_rate": rate,
        "events": events,
        "runs": submitted_runs,
        "seconds": elapsed,
        "producing_seconds": produced,
        "events_per_s": events / elapsed,
        "statements": tracker.statements,
        "rows_written": tracker.rows,
        "events_per_statement": events / max(tracker.statements, 1),
        "buffer_peak_runs": peak,
        "dropped": writer.stats.dropped,
        "lost": submitted_runs - finished,
        "rows": rows,
        **_lag_summary(tracker.lags),
    }


async def _peer(dsn: str, concurrency: int, *, seconds: float) -> dict[str, Any]:
    """TaskDbPlugin's path: one awaited ``db_upsert`` per event."""
    db = CrudDB(async_url(dsn))
    task_meta(db.metadata, table_name=PEER_TABLE)
    table = db.tables[PEER_TABLE]
    async with db.engine.begin() as conn:
        await conn.run_sync(table.create, checkfirst=True)
    await _truncate(dsn, PEER_TABLE)
    events = runs = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def producer() -> None:
        nonlocal events, runs
        while time.perf_counter() < deadline:
            run = _Run()
            runs += 1
            for k in range(3):
                r = run.event(k)
                t = time.perf_counter()
                # exactly TaskDbPlugin._handle_update's call
                await db.db_upsert(
                    table,
                    dict(id=r.id),
                    dict(
                        state=r.state,
                        name=r.name,
                        priority=TaskPriority(r.priority),
                        queued=r.queued,
                        start=r.start,
                        end=r.end,
                        params=r.params,
                    ),
                )
                latencies.append(time.perf_counter() - t)
                events += 1

    try:
        started = time.perf_counter()
        async with asyncio.timeout(seconds + 60):
            await asyncio.gather(*(producer() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await db.close()
    rows, finished = await _finished_rows(dsn, PEER_TABLE)
    return {
        "concurrency": concurrency,
        "events": events,
        "runs": runs,
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "upsert_p50_ms": percentile(latencies, 0.5) * 1000,
        "upsert_p99_ms": percentile(latencies, 0.99) * 1000,
        "lost": runs - finished,
        "rows": rows,
    }


_RAW_UPSERT = (
    f'INSERT INTO "{RAW_TABLE}" (id, name, priority, state, queued, start, "end", '
    "params) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET "
    "name = excluded.name, priority = excluded.priority, state = excluded.state, "
    'queued = excluded.queued, start = excluded.start, "end" = excluded."end", '
    "params = excluded.params"
)


async def _asyncpg(dsn: str, concurrency: int, *, seconds: float) -> dict[str, Any]:
    """The floor of one statement per event: prepared single-row upserts."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{RAW_TABLE}" (LIKE "{PEER_TABLE}" '
            "INCLUDING ALL)"
        )
        await conn.execute(f'TRUNCATE "{RAW_TABLE}"')
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    events = runs = 0
    deadline = time.perf_counter() + seconds

    async def producer() -> None:
        nonlocal events, runs
        async with pool.acquire() as conn:
            while time.perf_counter() < deadline:
                run = _Run()
                runs += 1
                for k in range(3):
                    r = run.event(k)
                    await conn.execute(
                        _RAW_UPSERT,
                        r.id,
                        r.name,
                        r.priority,
                        str(r.state),
                        r.queued,
                        r.start,
                        r.end,
                        json.dumps(r.params),
                    )
                    events += 1

    try:
        started = time.perf_counter()
        async with asyncio.timeout(seconds + 60):
            await asyncio.gather(*(producer() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    rows, finished = await _finished_rows(dsn, RAW_TABLE)
    return {
        "concurrency": concurrency,
        "events": events,
        "runs": runs,
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "lost": runs - finished,
        "rows": rows,
    }


async def _steady(
    name: str,
    monitor: ForeignCpu,
    test: Callable[[], Awaitable[dict[str, Any]]],
    attempts: int = 3,
) -> dict[str, Any]:
    """Run ``test`` on a quiet machine; again when foreign load disturbed it."""
    best: dict[str, Any] | None = None
    for attempt in range(1, attempts + 1):
        await monitor.quiet(60)
        monitor.start()
        began = time.perf_counter()
        result = await test()
        result["foreign_load"] = monitor.stop() / (time.perf_counter() - began)
        result["attempts"] = attempt
        if best is None or result["foreign_load"] < best["foreign_load"]:
            best = result
        if result["foreign_load"] < NOISY_LOAD:
            break
        load = result["foreign_load"]
        print(f"    (foreign load {load:.2f} CPU, measuring again)", flush=True)
    assert best is not None
    _print(name, best)
    return best


async def run_ingest(dsn: str, opts: IngestOptions, database: str) -> dict[str, Any]:
    """Every ingest test, each concurrency, in one dict."""
    monitor = ForeignCpu(database)
    results: dict[str, Any] = {"options": asdict(opts)}
    seconds = opts.seconds
    for c in opts.concurrencies:
        by_path = results[str(c)] = {}
        by_path["peer"] = await _steady(
            "peer", monitor, lambda c=c: _peer(dsn, c, seconds=seconds)
        )
        by_path["asyncpg"] = await _steady(
            "asyncpg", monitor, lambda c=c: _asyncpg(dsn, c, seconds=seconds)
        )
        by_path["ours"] = await _steady(
            "ours",
            monitor,
            lambda c=c: _ours(dsn, c, runs=opts.runs, rate=None, seconds=seconds),
        )
    top = max(opts.concurrencies)
    rate = opts.paced_rate or 10 * results[str(top)]["peer"]["events_per_s"]
    results["paced"] = await _steady(
        "ours paced",
        monitor,
        lambda: _ours(dsn, top, runs=0, rate=rate, seconds=seconds),
    )
    return results


def _print(name: str, result: dict[str, Any]) -> None:
    extra = ""
    if "lag_p99_ms" in result:
        extra = (
            f"  lag p50 {result['lag_p50_ms']:.1f} ms p99 {result['lag_p99_ms']:.1f} ms"
            f"  buffer peak {result['buffer_peak_runs']}"
            f"  statements {result['statements']}"
        )
    print(
        f"  {name:17} c={result['concurrency']:<3} {result['events_per_s']:10.1f} "
        f"events/s  ({result['events']} events, {result['seconds']:.2f} s, "
        f"lost {result['lost']}){extra}  foreign load "
        f"{result.get('foreign_load', 0):.2f}",
        flush=True,
    )
