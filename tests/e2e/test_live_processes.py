"""Live updates across processes: a worker process writes, two server
processes stream, this process subscribes to both over real websockets."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.processes import output_line, running
from tests.services import clear_broker
from tests.ws import GraphQLWS

UPDATES = """
subscription($filter: TaskRunFilter) {
  runUpdates(filter: $filter) { runId task state updated }
}
"""
#: How long a committed change may take to reach the subscriber.
MAX_LATENCY = 1.0
#: Runs queued after the warm-up, whose latencies are measured.
ADDED = 5
REDIS_DATABASE = 11


def own_redis_database(redis_url: str) -> str:
    """``redis_url`` with a database of this module's: no consumer of another
    test (or test run) takes the worker's runs."""
    return urlsplit(redis_url)._replace(path=f"/{REDIS_DATABASE}").geturl()


@pytest.fixture
def broker(redis_url: str) -> Iterator[str]:
    """The worker's broker, whose keys go once the test is done."""
    url = own_redis_database(redis_url)
    yield url
    clear_broker(url)


async def queue(worker: subprocess.Popen[str], task: str) -> str:
    """Have the worker queue a run of ``task``; its id."""
    assert worker.stdin is not None
    worker.stdin.write(f"{task} {{}}\n")
    worker.stdin.flush()
    line = await asyncio.to_thread(output_line, worker, ("queued",))
    return line.split()[1]


async def until_streaming(worker: subprocess.Popen[str], ws: GraphQLWS) -> list[str]:
    """Queue runs until ``ws`` gets one (its server listens once its first
    subscription starts); the ids queued."""
    queued = []
    async with asyncio.timeout(10):
        while True:
            queued.append(await queue(worker, "add"))
            try:
                await ws.next_data(timeout=1)
                return queued
            except TimeoutError:
                continue


async def test_run_updates_reach_subscribers_of_other_processes_within_a_second(
    database_url: str, broker: str, fresh_table: str
) -> None:
    with (
        running("worker", database_url, broker, fresh_table) as worker,
        running("serve", database_url, fresh_table) as server_a,
        running("serve", database_url, fresh_table) as server_b,
    ):
        output_line(worker, ("ready",))  # and its table created
        async with AsyncExitStack() as stack:
            clients = []
            for server in (server_a, server_b):
                port = output_line(server, ("port",)).split()[1]
                url = f"ws://127.0.0.1:{port}/tasks-graphql"
                ws = await stack.enter_async_context(GraphQLWS.connect(url))
                await ws.subscribe(UPDATES, filter={"task": ["add"]})
                clients.append(ws)
            warmups = {
                run for ws in clients for run in await until_streaming(worker, ws)
            }
            # read while the runs are queued, so a latency is never time
            # spent waiting in this client's buffer
            receiving = [
                asyncio.create_task(arrivals(ws, warmups, ADDED)) for ws in clients
            ]
            added = []
            for _ in range(ADDED):
                await queue(worker, "ping")  # a run the filter leaves out
                added.append(await queue(worker, "add"))
            received = await asyncio.gather(*receiving)
    for runs in received:
        assert {run["task"] for run in runs} == {"add"}
        assert {run["runId"] for run in runs} - warmups == set(added)
        latencies = [run["latency"] for run in runs if run["runId"] in added]
        assert max(latencies) < MAX_LATENCY, latencies


async def arrivals(
    ws: GraphQLWS, warmups: set[str], count: int
) -> list[dict[str, Any]]:
    """The runs ``ws`` receives until ``count`` runs other than ``warmups``
    have succeeded, each with the seconds from its write to its arrival."""
    runs, done = [], set()
    while len(done - warmups) < count:
        run: dict[str, Any] = (await ws.next_data())["runUpdates"]
        written = datetime.fromisoformat(run["updated"]).timestamp()
        runs.append(run | {"latency": time.time() - written})
        if run["state"] == "SUCCESS":
            done.add(run["runId"])
    return runs
