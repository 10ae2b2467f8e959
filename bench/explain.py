"""EXPLAIN ANALYZE of the SQL each target issues for each read scenario.

The apps run in-process (httpx over ASGI) while the statements that touch the
history table are captured: those SQLAlchemy executes by a
``before_cursor_execute`` listener, those run on asyncpg directly (gql_history's
compiled reads) by a query logger on every connection checked out. Each is
then explained with the very parameters it was sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from asyncpg.connection import LoggedQuery
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from .apps import build
from .scenarios import Fixtures, floor_query, http_request, serves

_SEQ_SCANS = frozenset(("Seq Scan", "Parallel Seq Scan"))


@dataclass(slots=True)
class Captured:
    """A statement as sent to asyncpg."""

    sql: str
    params: tuple[Any, ...]


@contextmanager
def capture(table: str) -> Iterator[list[Captured]]:
    """Collect the statements that mention ``table``, on every engine."""
    statements: list[Captured] = []

    def listener(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: Any
    ) -> None:
        if table in statement:
            statements.append(Captured(statement, tuple(parameters or ())))

    def logged(query: LoggedQuery) -> None:
        # asyncpg logs what it runs itself, not SQLAlchemy's prepared statements
        if table in query.query:
            statements.append(Captured(query.query, tuple(query.args)))

    drivers: list[Any] = []

    def log_driver(dbapi_connection: Any, *args: Any) -> None:
        drivers.append(dbapi_connection.driver_connection)
        drivers[-1].add_query_logger(logged)

    event.listen(Engine, "before_cursor_execute", listener)
    event.listen(Pool, "checkout", log_driver)
    try:
        yield statements
    finally:
        event.remove(Pool, "checkout", log_driver)
        event.remove(Engine, "before_cursor_execute", listener)
        for driver in drivers:
            driver.remove_query_logger(logged)


def summarize(plan: dict[str, Any], table: str) -> dict[str, Any]:
    """Scan nodes, whether any is a sequential scan of ``table``, and timings."""
    nodes: list[str] = []
    seq_scan = False

    def walk(node: dict[str, Any]) -> None:
        nonlocal seq_scan
        kind = node["Node Type"]
        label = kind
        if index := node.get("Index Name"):
            label += f" using {index}"
        elif relation := node.get("Relation Name"):
            label += f" on {relation}"
        nodes.append(label)
        if kind in _SEQ_SCANS and node.get("Relation Name") == table:
            seq_scan = True
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan["Plan"])
    return {
        "seq_scan": seq_scan,
        "plan": " > ".join(nodes),
        "execution_ms": plan.get("Execution Time"),
        "shared_hit_blocks": plan["Plan"].get("Shared Hit Blocks"),
        "shared_read_blocks": plan["Plan"].get("Shared Read Blocks"),
    }


async def explain_sql(
    conn: asyncpg.Connection, sql: str, params: tuple[Any, ...], table: str
) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement, summarized."""
    raw = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *params)
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    return summarize(plan, table) | {"sql": sql}


async def _app_statements(
    target: str, dsn: str, fx: Fixtures, scenarios: list[str]
) -> dict[str, list[Captured]]:
    app = build(target, dsn, fx.table)
    found: dict[str, list[Captured]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench"
        ) as client:
            for scenario in scenarios:
                if not serves(target, scenario):
                    continue
                spec = http_request(target, scenario, fx)

                async def send(spec: Any = spec) -> httpx.Response:
                    return await client.request(
                        spec.method,
                        spec.path,
                        params=spec.params or None,
                        json=spec.body,
                    )

                await send()  # caches warm, columns reflected
                with capture(fx.table) as statements:
                    response = await send()
                response.raise_for_status()
                found[scenario] = statements
    return found


async def run_explain(
    dsn: str, fx: Fixtures, targets: list[str], scenarios: list[str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{scenario: {target: [plan summary per statement]}}``."""
    results: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in scenarios}
    conn = await asyncpg.connect(dsn)
    try:
        for target in targets:
            if target == "floor":
                statements = {
                    s: [Captured(*_as_tuple(floor_query(s, fx)))] for s in scenarios
                }
            else:
                statements = await _app_statements(target, dsn, fx, scenarios)
            for scenario, captured in statements.items():
                # an estimate is an EXPLAIN already: nothing runs to explain
                results[scenario][target] = [
                    await explain_sql(conn, c.sql, c.params, fx.table)
                    for c in captured
                    if not c.sql.lstrip().upper().startswith("EXPLAIN")
                ]
    finally:
        await conn.close()
    return results


def _as_tuple(query: tuple[str, list[Any]]) -> tuple[str, tuple[Any, ...]]:
    return query[0], tuple(query[1])
