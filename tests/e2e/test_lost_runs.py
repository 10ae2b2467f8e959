"""A worker SIGKILLed mid-run: another worker process marks its runs
interrupted once its heartbeats stop, and leaves live workers' runs alone."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from gql_history.core.records import LOST_ERROR_TYPE
from gql_history.db.tables import history_table
from tests.processes import output_line, running
from tests.services import clear_broker, own_broker

#: The grace (4 s: a loaded machine may stall a live worker for a second)
#: and heartbeat (0.2 s) of ``tests.processes mortal``,
#: with room for a loaded machine: the mark is polled for, not timed.
MARK_TIMEOUT = 30.0


@pytest.fixture
def brokers(redis_url: str) -> Iterator[tuple[str, str]]:
    """Two brokers: the killed worker's runs stay on its own queue."""
    base = str(URL(redis_url).with_query({}))  # the session's broker name off
    urls = (own_broker(base), own_broker(base))
    yield urls
    for url in urls:
        clear_broker(url)


async def queue(worker: subprocess.Popen[str], task: str, params: str) -> str:
    """Have ``worker`` queue a run; its id."""
    assert worker.stdin is not None
    worker.stdin.write(f"{task} {params}\n")
    worker.stdin.flush()
    line = await asyncio.to_thread(output_line, worker, ("queued",))
    return line.split()[1]


async def rows(engine: AsyncEngine, table: sa.Table) -> dict[str, sa.Row[object]]:
    c = table.c
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(c.id, c.state, c.worker, c.error_type, c.error_message)
        )
        return {row.id: row for row in result}


async def test_lost_runs_of_a_killed_worker_are_marked_by_another_process(
    database_url: str, engine: AsyncEngine, fresh_table: str, brokers: tuple[str, str]
) -> None:
    table = history_table(sa.MetaData(), fresh_table)
    slow = '{"seconds": 60}'
    with (
        running("mortal", database_url, brokers[0], fresh_table) as doomed,
        running("mortal", database_url, brokers[1], fresh_table) as survivor,
    ):
        doomed_name = output_line(doomed, ("ready",)).split()[1]
        survivor_name = output_line(survivor, ("ready",)).split()[1]
        # two run, one waits: the worker takes two at a time
        lost = [await queue(doomed, "slow", slow) for _ in range(3)]
        alive = await queue(survivor, "slow", slow)

        async def started() -> bool:
            found = await rows(engine, table)
            states = [found[r].state for r in lost if r in found]
            return (
                sorted(states) == sorted([TaskState.running] * 2 + [TaskState.queued])
                and alive in found
                and found[alive].state is TaskState.running
            )

        async with asyncio.timeout(MARK_TIMEOUT):
            while not await started():
                await asyncio.sleep(0.05)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        killed = time.monotonic()

        async def marked() -> bool:
            found = await rows(engine, table)
            return all(found[r].state is TaskState.interrupted for r in lost)

        async with asyncio.timeout(MARK_TIMEOUT):
            while not await marked():
                await asyncio.sleep(0.05)
        took = time.monotonic() - killed
        found = await rows(engine, table)
    print(f"marked {len(lost)} lost runs {took:.2f}s after the kill")
    for run_id in lost:
        run = found[run_id]
        assert (run.worker, run.error_type) == (doomed_name, LOST_ERROR_TYPE)
        assert run.error_message.startswith(
            f"worker {doomed_name} stopped sending heartbeats at "
        )
        assert run.error_message.endswith(f"marked interrupted by {survivor_name}")
    # no false positive: the live worker's run is still running
    assert (found[alive].state, found[alive].worker) == (
        TaskState.running,
        survivor_name,
    )
