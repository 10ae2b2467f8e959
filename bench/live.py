"""Live-update latency: from a committed run state change to each of N
websocket subscribers of a history server in another process.

Run by hand (not part of the tests), on the local PostgreSQL::

    .venv/bin/python -m bench.live --subscribers 100

The server is ``python -m tests.processes serve`` (uvicorn, one process) over
a table of its own, ``live_latency`` in ``gql_history_bench`` (recreated each
run; the benchmark's ``runs_*`` tables are left alone). This process writes
each run's queued, running and success states through a ``HistoryStore`` at a
steady rate and notes when each write commits; the subscribers note when each
state arrives. Latency is arrival minus commit, both on this machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack

import sqlalchemy as sa

from gql_history import HistoryStore, history_table
from gql_history.db.engine import create_engine
from tests.factories import lifecycle
from tests.processes import output_line, running
from tests.ws import GraphQLWS

from .seed import ensure_database

UPDATES = "subscription { runUpdates { runId state } }"
DSN = "postgresql://postgres@127.0.0.1:5432/gql_history_bench"


async def subscriber(
    ws: GraphQLWS, last: str, arrived: dict[tuple[str, str], float]
) -> None:
    """Note when each run state arrives, until ``last`` succeeds."""
    while True:
        run = (await ws.next_data(timeout=60))["runUpdates"]
        arrived[run["runId"], run["state"]] = time.time()
        if (run["runId"], run["state"]) == (last, "SUCCESS"):
            return


async def measure(url: str, subscribers: int, runs: int, rate: float) -> None:
    server_url, database = url.rsplit("/", 1)
    await ensure_database(f"{server_url}/postgres", database)
    engine = create_engine(url)
    store = HistoryStore(engine, history_table(sa.MetaData(), "live_latency"))
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP TABLE IF EXISTS live_latency"))
    await store.create_tables()
    with running("serve", url, "live_latency") as server:
        port = output_line(server, ("port",)).split()[1]
        endpoint = f"ws://127.0.0.1:{port}/tasks-graphql"
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(GraphQLWS.connect(endpoint))
                for _ in range(subscribers)
            ]
            for ws in clients:
                await ws.subscribe(UPDATES)
            await warm_up(store, clients)
            last = f"lat-{runs - 1}"
            arrivals: list[dict[tuple[str, str], float]] = [{} for _ in clients]
            listening = [
                asyncio.create_task(subscriber(ws, last, arrived))
                for ws, arrived in zip(clients, arrivals, strict=True)
            ]
            committed = await write(store, runs, rate)
            await asyncio.gather(*listening)
    await engine.dispose()
    report(committed, arrivals, subscribers, rate)


async def warm_up(store: HistoryStore, clients: Sequence[GraphQLWS]) -> None:
    """Write runs until every subscriber receives one (the server listens
    once its first subscription starts)."""
    for attempt in range(50):
        await store.upsert(lifecycle(f"warm-{attempt}")[:1])
        try:
            for ws in clients:
                await ws.next_data(timeout=1)
            break
        except TimeoutError:
            continue
    for ws in clients:  # drain what the earlier attempts sent
        while True:
            try:
                await ws.receive(timeout=0.2)
            except TimeoutError:
                break


async def write(
    store: HistoryStore, runs: int, rate: float
) -> dict[tuple[str, str], float]:
    """Write ``runs`` runs' three states, ``rate`` state changes a second;
    when each committed."""
    committed = {}
    interval = 1 / rate
    started = time.monotonic()
    for i in range(runs):
        for step, record in enumerate(lifecycle(f"lat-{i}")):
            due = started + (3 * i + step) * interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await store.upsert([record])
            committed[record.id, record.state.value.upper()] = time.time()
    return committed


def report(
    committed: dict[tuple[str, str], float],
    arrivals: list[dict[tuple[str, str], float]],
    subscribers: int,
    rate: float,
) -> None:
    latencies = [
        (arrived[change] - at) * 1000
        for arrived in arrivals
        for change, at in committed.items()
        if change in arrived
    ]
    expected = len(committed) * subscribers
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    print(
        f"{subscribers} subscribers, {len(committed)} state changes at "
        f"{rate:g}/s: {len(latencies)} of {expected} deliveries "
        f"({expected - len(latencies)} coalesced)"
    )
    print(
        f"latency ms: p50 {cuts[49]:.1f}  p90 {cuts[89]:.1f}  "
        f"p99 {cuts[98]:.1f}  max {max(latencies):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=DSN)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--runs", type=int, default=100, help="3 changes each")
    parser.add_argument("--rate", type=float, default=30, help="changes a second")
    args = parser.parse_args()
    asyncio.run(measure(args.dsn, args.subscribers, args.runs, args.rate))


if __name__ == "__main__":
    main()
