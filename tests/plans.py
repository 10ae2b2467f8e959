"""Query plans of the store's statements, for tests that check an index
serves a read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gql_history.db.statements import CompiledRead
from gql_history.db.store import HistoryStore


async def plan_of(
    store: HistoryStore,
    statement: sa.Select[Any],
    params: Mapping[str, Any],
    *,
    disabled: tuple[str, ...] = ("seqscan",),
) -> str:
    """The JSON plan of ``statement`` with ``params``, as text, planned with
    the ``disabled`` plan kinds turned off (``enable_<kind> = off``): on a
    small table the planner may prefer a scan or a sort an index could spare."""
    read = CompiledRead.compile(statement, store.engine.dialect)
    async with store.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        async with driver.transaction():
            for kind in disabled:
                await driver.execute(f"SET LOCAL enable_{kind} = off")
            plan = await driver.fetchval(
                "EXPLAIN (FORMAT JSON) " + read.sql, *read.args(params)
            )
    return str(plan)
