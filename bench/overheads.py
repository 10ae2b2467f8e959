"""What a row-level scope and persisted queries add to one GraphQL request,
in-process (no network), on a small table of its own.

    .venv/bin/python -m bench.overheads [--dsn URL] [--rows 10000] [--requests 500]

Each case sends the same page query; the pairs differ only in the feature:
the same filter given by the client or by a scope, and the same document sent
whole or by its APQ hash. Medians and 95th percentiles, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fluid.scheduler import TaskState
from starlette.requests import HTTPConnection

from gql_history import RunFilter, create_app
from gql_history.core.persisted import sha256_hex
from gql_history.core.records import RunRecord

TABLE = "bench_overheads"
#: Requests of one case in a row, between the other cases' blocks.
BLOCK = 10
PAGE = """
query Page($filter: TaskRunFilter) {
  runs(filter: $filter, first: 20) {
    edges { node { runId task state queued params tags } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
TASKS = ["add", "ping", "report", "slow"]
FILTER = {"task": ["add", "ping"]}


def _scope(connection: HTTPConnection) -> RunFilter | None:
    if connection.headers.get("x-scoped"):
        return RunFilter(task=FILTER["task"])
    return None


def _records(rows: int) -> list[RunRecord]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        RunRecord(
            id=f"o-{i}",
            name=TASKS[i % len(TASKS)],
            priority="medium",
            state=TaskState.success,
            queued=start + timedelta(seconds=i),
            start=None,
            end=None,
            params={"n": i},
            from_run_id="",
            root_run_id="",
            retry_attempt=0,
            error_type=None,
            error_message=None,
            tags=[],
        )
        for i in range(rows)
    ]


async def _timed(
    client: httpx.AsyncClient, count: int, body: dict[str, Any], headers: dict[str, str]
) -> list[float]:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        response = await client.post("/tasks-graphql", json=body, headers=headers)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200 and "errors" not in response.json()
    return times


async def main(dsn: str, rows: int, requests: int) -> None:
    app = create_app(dsn, table_name=TABLE, scope=_scope)
    service = app.state.history_service
    async with service.store.engine.begin() as conn:
        await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{TABLE}"'))
    await service.store.create_tables()
    records = _records(rows)
    for batch in range(0, rows, 1000):
        await service.store.upsert(records[batch : batch + 1000])
    hashed = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(PAGE)}}
    cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        (
            "filter from the client",
            {"query": PAGE, "variables": {"filter": FILTER}},
            {},
        ),
        ("same filter from a scope", {"query": PAGE}, {"x-scoped": "1"}),
        ("document sent whole", {"query": PAGE}, {}),
        ("document by APQ hash", {"extensions": hashed}, {}),
    ]
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
        await client.post("/tasks-graphql", json={"query": PAGE, "extensions": hashed})
        for _, body, headers in cases:  # warm every statement and cache
            await _timed(client, 20, body, headers)
        # interleaved blocks, each round starting with the next case, so a
        # busy moment of a shared machine falls on every case alike
        timings: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for round_ in range(max(1, requests // BLOCK)):
            shift = round_ % len(cases)
            for name, body, headers in cases[shift:] + cases[:shift]:
                timings[name] += await _timed(client, BLOCK, body, headers)
        print(f"{rows} runs, {requests} requests per case, interleaved, in-process:")
        for name, times in timings.items():
            times.sort()
            p95 = times[int(len(times) * 0.95)]
            median = statistics.median(times)
            print(f"  {name:26} median {median:6.2f} ms  p95 {p95:6.2f} ms")
    async with service.store.engine.begin() as conn:
        await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{TABLE}"'))
    await service.close()
    await service.store.engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("--dsn or DATABASE_URL is needed")
    asyncio.run(main(args.dsn, args.rows, args.requests))
