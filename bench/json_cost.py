"""What each field of a page costs PostgreSQL to write as JSON.

``python -m bench.json_cost --rows 1000000`` (after ``python -m bench`` has
seeded the table) times, on asyncpg and interleaved, the compiled statement
of the newest page of 100 runs with every field of ``bench.scenarios``, the
same page with each field left out in turn, the page with ``runId`` alone,
and the raw rows of the floor. Each median is printed with its ratio to the
full page: the share of the statement's time each field takes.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import asyncpg

from .apps import build
from .breakdown import DSN
from .inprocess import Call, asgi_call, interleaved, statement_call
from .scenarios import (
    PAGE,
    RUN_SELECTION,
    Fixtures,
    HttpRequest,
    floor_query,
    load_fixtures,
    page_query,
)
from .seed import table_name_for

FULL = "every field"
FLOOR = "floor (asyncpg rows)"


def selections() -> dict[str, tuple[str, ...]]:
    """The fields each timed page selects, by name."""
    found = {FULL: RUN_SELECTION, "runId alone": ("runId",)}
    for field in RUN_SELECTION:
        name = field.split(" ", 1)[0]
        found[f"without {name}"] = tuple(f for f in RUN_SELECTION if f != field)
    return found


async def _calls(app: Any, conn: asyncpg.Connection, fx: Fixtures) -> dict[str, Call]:
    """A call per timed statement: the floor's, then each selection's."""
    sql, values = floor_query("newest", fx)
    floor = await conn.prepare(sql)
    calls: dict[str, Call] = {FLOOR: lambda: floor.fetch(*values)}
    for name, fields in selections().items():
        body = {"query": page_query(" ".join(fields)), "variables": {"first": PAGE}}
        call = asgi_call(app, HttpRequest("POST", "/tasks-graphql", body=body))
        calls[name] = await statement_call(app, call, conn)
    return calls


async def main(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(args.dsn)
    fx = await load_fixtures(conn, table_name_for(args.rows), args.rows)
    app = build("ours-graphql", args.dsn, fx.table)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        medians = await interleaved(await _calls(app, conn, fx), args.n)
    finally:
        await lifespan.__aexit__(None, None, None)
        await conn.close()
    full = medians[FULL]
    print(f"newest page of {PAGE}, {args.rows:,} rows, median of {args.n}:")
    for name, ms in medians.items():
        print(f"  {name:24} {ms:7.3f} ms  {ms / full:5.2f}x every field")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.json_cost")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dsn", default=DSN)
    parser.add_argument("-n", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
