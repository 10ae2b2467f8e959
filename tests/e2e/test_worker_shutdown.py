"""A worker process shutting down while PostgreSQL is unreachable: what it
cannot write is counted and logged, within aio-fluid's grace period."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator

import pytest

from tests.e2e.test_live_processes import queue
from tests.processes import output_line, running
from tests.proxy import TcpProxy, database_proxy, through

GRACE = 2.0
RUNS = 5


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    async with database_proxy(database_url) as proxy:
        yield proxy


async def test_worker_shutdown_counts_and_logs_what_the_database_missed(
    database_url: str, redis_url: str, proxy: TcpProxy, fresh_table: str
) -> None:
    proxied = through(database_url, proxy)
    with (
        tempfile.TemporaryFile("w+") as stderr,
        running(
            "worker",
            proxied,
            redis_url,
            fresh_table,
            stderr=stderr,
            FLUID_STOPPING_GRACE_PERIOD=str(GRACE),
        ) as worker,
    ):
        await asyncio.to_thread(output_line, worker, ("ready",), 120)
        await proxy.cut()
        for _ in range(RUNS):
            await queue(worker, "add")
        assert worker.stdin is not None
        started = time.monotonic()
        worker.stdin.close()
        stats = await asyncio.to_thread(output_line, worker, ("writer",), 60)
        stopped = time.monotonic() - started
        await asyncio.to_thread(worker.wait, 30)
        stderr.seek(0)
        errors = [line for line in stderr if line.startswith("ERROR gql_history")]
    counts = dict(field.split("=") for field in stats.split()[1:])
    # each run's updates coalesce into one, which is dropped
    assert {**counts, "submitted": "?"} == {
        "submitted": "?",
        "written": "0",
        "dropped": str(RUNS),
        "pending": "0",
    }
    assert len(errors) == 1, errors
    assert f"dropped {RUNS} run update(s)" in errors[0]
    assert stopped < 2 * GRACE + 1  # aio-fluid never had to cancel the close
