"""``runStats`` and the facets on the benchmark's seeded table, timed.

Run by hand (not part of the tests), once ``python -m bench`` has seeded
``runs_<rows>`` in ``gql_history_bench`` (it is only read here)::

    .venv/bin/python -m bench.overview --rows 1000000

Each query is POSTed to ``gql_history.create_app`` in this process (no
network), three times to warm up, then ``--repeat`` times: the median and the
slowest are printed, with the runs each covers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx

from gql_history import create_app

from .seed import WINDOW_END, table_name_for

DSN = "postgresql://postgres@127.0.0.1:5432/gql_history_bench"
ALL_PARTS = (
    "total byState { state count } byTask { task count } "
    "duration { count min avg p50 p95 max } series { start total }"
)
DAY_BEFORE = "2025-12-31T00:00:00+00:00"
HOUR_BEFORE = "2025-12-31T23:00:00+00:00"
LAST = WINDOW_END.isoformat()
#: Name, document, variables.
QUERIES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "runStats, 30 days (the whole table), DAY, every part",
        f"query($f: TaskRunFilter) {{ runStats(filter: $f, bucket: DAY) "
        f"{{ {ALL_PARTS} }} }}",
        {"f": {"queuedAfter": "2025-12-02T00:00:00+00:00", "queuedBefore": LAST}},
    ),
    (
        "runStats, 30 days, DAY, total + byState only",
        "query($f: TaskRunFilter) { runStats(filter: $f, bucket: DAY) "
        "{ total byState { state count } } }",
        {"f": {"queuedAfter": "2025-12-02T00:00:00+00:00", "queuedBefore": LAST}},
    ),
    (
        "runStats, last 24 hours, HOUR, every part",
        f"query($f: TaskRunFilter) {{ runStats(filter: $f, bucket: HOUR) "
        f"{{ {ALL_PARTS} }} }}",
        {"f": {"queuedAfter": DAY_BEFORE, "queuedBefore": LAST}},
    ),
    (
        "runStats, last hour, MINUTE, every part",
        f"query($f: TaskRunFilter) {{ runStats(filter: $f, bucket: MINUTE) "
        f"{{ {ALL_PARTS} }} }}",
        {"f": {"queuedAfter": HOUR_BEFORE, "queuedBefore": LAST}},
    ),
    (
        "runStats, 30 days, failures of one region, DAY, every part",
        f"query($f: TaskRunFilter) {{ runStats(filter: $f, bucket: DAY) "
        f"{{ {ALL_PARTS} }} }}",
        {
            "f": {
                "queuedAfter": "2025-12-02T00:00:00+00:00",
                "queuedBefore": LAST,
                "state": ["FAILURE"],
                "params": {"region": "eu"},
            }
        },
    ),
    ("taskNames, every run", "{ taskNames { task count } }", {}),
    (
        "taskNames, failures",
        "query($f: TaskRunFilter) { taskNames(filter: $f) { task count } }",
        {"f": {"state": ["FAILURE"]}},
    ),
    ("taskTags, every run", "{ taskTags { tag count } }", {}),
)


async def timed(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], repeat: int
) -> tuple[list[float], dict[str, Any]]:
    """Milliseconds of each of ``repeat`` requests (after 3 warm-ups), and
    the last answer."""
    times, body = [], {}
    for attempt in range(repeat + 3):
        started = time.perf_counter()
        response = await client.post(
            "/tasks-graphql", json={"query": query, "variables": variables}
        )
        elapsed = (time.perf_counter() - started) * 1000
        body = response.json()
        assert "errors" not in body, body
        if attempt >= 3:
            times.append(elapsed)
    return times, body


async def measure(dsn: str, rows: int, repeat: int) -> None:
    app = create_app(dsn, table_name=table_name_for(rows))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", timeout=120
    ) as client:
        for name, query, variables in QUERIES:
            times, body = await timed(client, query, variables, repeat)
            data = next(iter(body["data"].values()))
            covered = data.get("total") if isinstance(data, dict) else None
            runs = f", {covered:,} runs" if covered is not None else ""
            print(
                f"{name}: median {statistics.median(times):.0f} ms, "
                f"max {max(times):.0f} ms{runs}"
            )
    await app.state.history_service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=DSN)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(measure(args.dsn, args.rows, args.repeat))


if __name__ == "__main__":
    main()
