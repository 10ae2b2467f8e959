"""``python -m bench.counts --rows 10000000``: ``approximateCount`` and
``countUpTo`` over a seeded table, per filter.

Each count is one GraphQL request to ``create_app`` over ASGI (in-process, no
HTTP server), interleaved with the others; the figures are the median and
p95 of ``-n`` requests, with the exact ``count(*)`` of the filter (timed once)
beside them. Run ``python -m bench --rows N`` first to seed ``runs_<N>``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import asyncpg
import httpx

from gql_history import create_app

from .cli import seeded_parser
from .load import percentile
from .scenarios import COUNT_LIMIT, ERROR_TEXT
from .seed import SCENARIO_TASK, table_name_for

#: Filters counted: GraphQL ``TaskRunFilter`` and the same as SQL.
FILTERS: dict[str, tuple[dict[str, Any] | None, str]] = {
    "none": (None, "true"),
    "state = failure": ({"state": ["FAILURE"]}, "state = 'failure'"),
    f"task = {SCENARIO_TASK}": ({"task": [SCENARIO_TASK]}, f"name = '{SCENARIO_TASK}'"),
    'params @> {"region": "sa"}': (
        {"params": {"region": "sa"}},
        """params @> '{"region": "sa"}'""",
    ),
    f"errorContains {ERROR_TEXT!r}": (
        {"errorContains": ERROR_TEXT},
        f"error_message ILIKE '%{ERROR_TEXT}%'",
    ),
    "state = init, priority = low": (
        {"state": ["INIT"], "priority": ["LOW"]},
        "state = 'init' AND priority = 'low'",
    ),
}
_COUNTS = "query Counts($filter: TaskRunFilter) { runs(filter: $filter) { %s } }"
FIELDS = {
    "approximateCount": "approximateCount",
    f"countUpTo({COUNT_LIMIT})": f"countUpTo(limit: {COUNT_LIMIT})",
}


async def exact_counts(dsn: str, table: str) -> dict[str, tuple[int, float]]:
    """Each filter's ``count(*)`` and how long it took, in ms."""
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for name, (_, where) in FILTERS.items():
            started = time.perf_counter()
            count = await conn.fetchval(f'SELECT count(*) FROM "{table}" WHERE {where}')
            out[name] = (count, (time.perf_counter() - started) * 1000)
        return out
    finally:
        await conn.close()


async def measure(args: argparse.Namespace) -> None:
    table = table_name_for(args.rows)
    exact = await exact_counts(args.dsn, table)
    app = create_app(args.dsn, table_name=table)
    samples: dict[tuple[str, str], list[float]] = {}
    answers: dict[tuple[str, str], int] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as c:
            for i in range(args.n + args.warmup):
                for name, (run_filter, _) in FILTERS.items():
                    for label, field in FIELDS.items():
                        body = {
                            "query": _COUNTS % field,
                            "variables": {"filter": run_filter},
                        }
                        started = time.perf_counter()
                        response = await c.post("/tasks-graphql", json=body)
                        elapsed = (time.perf_counter() - started) * 1000
                        payload = response.json()
                        assert "errors" not in payload, payload
                        answers[name, label] = next(
                            iter(payload["data"]["runs"].values())
                        )
                        if i >= args.warmup:
                            samples.setdefault((name, label), []).append(elapsed)
    print(
        f"\n{args.rows:,} runs in {table}, median (p95) of {args.n} GraphQL requests:"
    )
    print("| filter | exact count (SQL ms) | count | answer | median ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for name in FILTERS:
        count, ms = exact[name]
        for label in FIELDS:
            times = samples[name, label]
            print(
                f"| {name} | {count:,} ({ms:.0f}) | {label} | {answers[name, label]:,} "
                f"| {statistics.median(times):.2f} | {percentile(times, 0.95):.2f} |"
            )


def main() -> None:
    parser = seeded_parser("python -m bench.counts")
    parser.add_argument("-n", type=int, default=50, help="timed requests each")
    parser.add_argument("--warmup", type=int, default=5)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
