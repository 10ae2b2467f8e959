"""Where a page's time goes, stage by stage, in-process (no HTTP server).

``python -m bench.breakdown --rows 1000000`` times, for the newest page
of 100 and the deep page, each layer on its own: the raw SQL, our store, its
SQLAlchemy statement building, the row -> model/type mapping, GraphQL
execution with and without the database, the whole app over ASGI; and the
same for aio-fluid's TaskDbPlugin. Run it after ``python -m bench`` has
seeded the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from fluid.db import CrudDB
from fluid.scheduler.db import TaskDbPlugin
from fluid.scheduler.db import TaskHistoryQuery as PeerQuery
from sqlalchemy.ext.asyncio import create_async_engine

from gql_history import TaskHistoryPlugin, TaskHistoryQuery
from gql_history.core.paging import Page
from gql_history.db.engine import async_url
from gql_history.db.keyset import page_statement
from gql_history.db.statements import CompiledRead
from gql_history.web.models import TaskRunHistory

from .apps import build
from .scenarios import (
    Fixtures,
    floor_query,
    graphql_request,
    load_fixtures,
    rest_request,
)
from .seed import table_name_for

DSN = "postgresql://postgres@127.0.0.1:5432/gql_history_bench"


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    """Median milliseconds of ``fn`` over ``n`` calls, after ``n // 5`` warm-ups."""
    for _ in range(max(3, n // 5)):
        await fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def timed_sync(fn: Callable[[], Any], n: int) -> float:
    """Median milliseconds of a synchronous ``fn``."""
    for _ in range(max(3, n // 5)):
        fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def breakdown(
    dsn: str, fx: Fixtures, scenario: str, n: int, pool_size: int
) -> dict[str, float]:
    """Stage timings for ``scenario`` (``newest`` or ``deep``)."""
    out: dict[str, float] = {}
    conn = await asyncpg.connect(dsn)
    sql, args = floor_query(scenario, fx)
    out["floor: asyncpg fetch"] = await timed(lambda: conn.fetch(sql, *args), n)
    await conn.close()

    engine = create_async_engine(async_url(dsn), pool_size=pool_size)
    plugin = TaskHistoryPlugin(engine, table_name=fx.table)
    store = plugin.store
    start = fx.deep if scenario == "deep" else None

    async def page() -> Page:
        return await store.page(None, limit=100, start=start)

    out["ours: store.page"] = await timed(page, n)

    captured: list[sa.Select[Any]] = []

    async def build_select() -> None:
        bound = await store.bound(None)
        select = await store.select_runs()
        has_start = start is not None
        captured.append(
            page_statement(
                store.table,
                select,
                bound.condition,
                descending=True,
                has_start=has_start,
                probe=False,
            )
        )

    out["ours: build page statement (once per shape)"] = await timed(build_select, n)
    stmt = captured[-1]
    out["ours: compile it (once per shape)"] = timed_sync(
        lambda: CompiledRead.compile(stmt, engine.dialect), n
    )
    sample = await page()
    runs = sample.runs
    out["ours: 100 runs -> REST models (TaskRunHistory.from_record)"] = timed_sync(
        lambda: [TaskRunHistory.from_record(run) for run in runs], n
    )
    from gql_history.graphql.types import TaskRun

    out["ours: 100 runs -> GraphQL TaskRun.from_record"] = timed_sync(
        lambda: [TaskRun.from_record(run) for run in runs], n
    )

    query = TaskHistoryQuery(limit=100)
    if scenario == "deep":
        query = TaskHistoryQuery(
            cursor=rest_request("ours-rest", "deep", fx).params["cursor"]
        )
    out["ours: plugin.get_history (REST, no HTTP)"] = await timed(
        lambda: plugin.get_history(query), n
    )
    page_model = await plugin.get_history(query)
    out["ours: REST page model -> JSON"] = timed_sync(page_model.model_dump_json, n)

    from gql_history.graphql.context import HistoryContext
    from gql_history.schema import build_schema

    schema = build_schema(plugin.service.limits)
    body = graphql_request(scenario, fx).body or {}

    async def execute() -> Any:
        result = await schema.execute(
            body["query"],
            variable_values=body["variables"],
            context_value=HistoryContext(plugin),
        )
        assert not result.errors, result.errors
        return result

    out["ours: GraphQL schema.execute (with DB)"] = await timed(execute, n)
    result = await execute()
    out["ours: GraphQL result -> json.dumps"] = timed_sync(
        lambda: json.dumps({"data": result.data}, default=str), n
    )
    real_page = store.page

    async def cached_page(*args: Any, **kwargs: Any) -> Page:
        return sample

    store.page = cached_page  # type: ignore[method-assign]
    out["ours: GraphQL schema.execute (page cached, no DB)"] = await timed(execute, n)
    store.page = real_page  # type: ignore[method-assign]
    await engine.dispose()

    for target in ("ours-graphql", "ours-graphql-strawberry", "ours-rest", "peer"):
        app = build(target, dsn, fx.table)
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            )
            from .scenarios import http_request

            spec = http_request(target, scenario, fx)

            async def request(spec: Any = spec, client: Any = client) -> None:
                response = await client.request(
                    spec.method, spec.path, params=spec.params or None, json=spec.body
                )
                response.raise_for_status()

            out[f"{target}: whole app over ASGI (no server)"] = await timed(request, n)
            await client.aclose()

    db = CrudDB(async_url(dsn))
    peer = TaskDbPlugin(db, table_name=fx.table)
    peer_query = PeerQuery(limit=100)
    if scenario == "deep":
        peer_query = PeerQuery(cursor=rest_request("peer", "deep", fx).params["cursor"])
    out["peer: TaskDbPlugin.get_history (no HTTP)"] = await timed(
        lambda: peer.get_history(peer_query), n
    )
    await db.close()
    return out


async def main(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(args.dsn)
    try:
        fx = await load_fixtures(conn, table_name_for(args.rows), args.rows)
    finally:
        await conn.close()
    for scenario in args.scenarios.split(","):
        print(f"\n{scenario} page of 100, {args.rows:,} rows, median of {args.n}:")
        result = await breakdown(args.dsn, fx, scenario, args.n, args.pool_size)
        for stage, ms in result.items():
            print(f"  {stage:55} {ms:8.3f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.breakdown")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dsn", default=DSN)
    parser.add_argument("--scenarios", default="newest,deep")
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--pool-size", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
