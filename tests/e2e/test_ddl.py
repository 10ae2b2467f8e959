"""Processes racing the history table's DDL, as workers starting together do."""

from __future__ import annotations

import contextlib

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.processes import output_line, running

#: Two of each, all at once: workers start with either.
ACTIONS = ["create_tables", "upgrade_tables"] * 2
#: Python processes start slowly on a busy machine.
START_TIMEOUT = 120.0


async def drop(engine: AsyncEngine, table: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))


def race(database_url: str, table: str, actions: list[str]) -> list[str]:
    """Start one process per action, connected and waiting, then let them all
    go at once; return what each printed."""
    with contextlib.ExitStack() as stack:
        processes = [
            stack.enter_context(running("ddl", database_url, table, action))
            for action in actions
        ]
        for process in processes:
            output_line(process, ("ready",), START_TIMEOUT)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        return [output_line(process, ("done", "error")) for process in processes]


async def test_ddl_racing_processes_all_succeed(
    database_url: str, engine: AsyncEngine
) -> None:
    table = "runs_ddl_race"
    await drop(engine, table)
    assert race(database_url, table, ACTIONS) == ["done"] * len(ACTIONS)
    async with engine.connect() as conn:
        count = await conn.scalar(sa.text(f'SELECT count(*) FROM "{table}"'))
    assert count == 0
