"""Lost runs: a worker SIGKILLed mid-run, its runs marked by another process.

Run by hand (not part of the tests), with ``DATABASE_URL`` and ``REDIS_URL``
set (or ``--dsn``, ``--redis``)::

    .venv/bin/python -m bench.lost_runs --grace 30 --heartbeat 5

Two trials, each over a table of its own (``lost_runs_kill``,
``lost_runs_outage``, recreated), with worker processes of
``tests.processes mortal`` on broker names of their own:

- ``kill``: a worker running ``--in-flight`` slow runs, with ``--waiting``
  more it queued, is SIGKILLed; a survivor running runs of its own marks
  them. It prints the runs marked, the seconds from the kill until the last
  was marked, and the survivor's runs marked (false positives).
- ``outage``: the worker writes through a TCP proxy; ``--runs`` short runs
  are queued, the proxy is cut halfway, the worker is SIGKILLed a second
  later and the proxy restored. After the grace, it counts the worker's runs
  by state: none may still look live.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from gql_history.core.records import LOST_ERROR_TYPE
from gql_history.db.engine import create_engine
from gql_history.db.tables import history_table
from tests.processes import output_line, running
from tests.proxy import TcpProxy
from tests.services import clear_broker, own_broker

SLOW = '{"seconds": 25}'  # within the slow task's 30 s timeout
SHORT = '{"seconds": 0.3}'


@contextmanager
def brokers(redis_url: str, count: int) -> Iterator[list[str]]:
    """``count`` broker URLs of their own, their keys deleted afterwards."""
    base = str(URL(redis_url).with_query({}))
    urls = [own_broker(base) for _ in range(count)]
    try:
        yield urls
    finally:
        for url in urls:
            clear_broker(url)


def queue(worker: subprocess.Popen[str], task: str, params: str) -> str:
    assert worker.stdin is not None
    worker.stdin.write(f"{task} {params}\n")
    worker.stdin.flush()
    return output_line(worker, ("queued",)).split()[1]


async def fresh(engine: AsyncEngine, name: str) -> sa.Table:
    table = history_table(sa.MetaData(), name)
    async with engine.begin() as conn:
        for each in (table, *table.info["side_tables"]):
            await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{each.name}"'))
    return table


async def states(engine: AsyncEngine, table: sa.Table) -> dict[str, Any]:
    c = table.c
    async with engine.connect() as conn:
        result = await conn.execute(sa.select(c.id, c.state, c.worker, c.error_type))
        return {row.id: row for row in result}


async def kill_trial(
    engine: AsyncEngine, dsn: str, redis: str, args: argparse.Namespace
) -> None:
    table = await fresh(engine, "lost_runs_kill")
    mortal = (str(args.in_flight), str(args.grace), str(args.heartbeat))
    with (
        brokers(redis, 2) as (mine, theirs),
        running("mortal", dsn, mine, table.name, *mortal) as doomed,
        running("mortal", dsn, theirs, table.name, "2", *mortal[1:]) as survivor,
    ):
        output_line(doomed, ("ready",))
        output_line(survivor, ("ready",))
        lost = [queue(doomed, "slow", SLOW) for _ in range(args.in_flight)]
        lost += [queue(doomed, "slow", SLOW) for _ in range(args.waiting)]
        alive = [queue(survivor, "slow", SLOW) for _ in range(2)]
        while True:
            found = await states(engine, table)
            live = Counter(found[r].state.value for r in lost if r in found)
            if live["running"] == args.in_flight and live["queued"] == args.waiting:
                break
            await asyncio.sleep(0.05)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        killed = time.monotonic()
        while True:
            found = await states(engine, table)
            if all(found[r].error_type == LOST_ERROR_TYPE for r in lost):
                break
            await asyncio.sleep(0.05)
        took = time.monotonic() - killed
        false = [r for r in alive if found[r].error_type == LOST_ERROR_TYPE]
    print(
        f"kill: {len(lost)} runs ({args.in_flight} running, {args.waiting} queued) "
        f"marked interrupted {took:.2f}s after the SIGKILL "
        f"(grace {args.grace}s, heartbeat {args.heartbeat}s); "
        f"false positives: {len(false)} of the survivor's {len(alive)} live runs"
    )


async def outage_trial(
    engine: AsyncEngine, dsn: str, redis: str, args: argparse.Namespace
) -> None:
    table = await fresh(engine, "lost_runs_outage")
    url = make_url(dsn)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port)
    mortal = ("8", str(args.grace), str(args.heartbeat))
    with ExitStack() as stack:
        mine, theirs = stack.enter_context(brokers(redis, 2))
        doomed = stack.enter_context(
            running(
                "mortal",
                proxied.render_as_string(hide_password=False),
                mine,
                table.name,
                *mortal,
            )
        )
        reaper = stack.enter_context(
            running("mortal", dsn, theirs, table.name, "1", *mortal[1:])
        )
        # the proxy runs on this loop: wait in threads
        await asyncio.to_thread(output_line, doomed, ("ready",))
        await asyncio.to_thread(output_line, reaper, ("ready",))
        queued = []
        for i in range(args.runs):
            if i == args.runs // 2:
                await proxy.cut()
            queued.append(await asyncio.to_thread(queue, doomed, "slow", SHORT))
        await asyncio.sleep(1)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        killed = time.monotonic()
        await proxy.start()  # as the database comes back
        deadline = killed + args.grace + 3 * args.heartbeat + 2
        await asyncio.sleep(max(deadline - time.monotonic(), 0))
        found = await states(engine, table)
    counts = Counter(
        "marked interrupted" if run.error_type == LOST_ERROR_TYPE else run.state.value
        for run in found.values()
    )
    counts["never written"] = len(set(queued) - set(found))
    print(
        f"outage: {args.runs} runs, the database cut after {args.runs // 2}, the "
        f"worker killed 1s later; {args.grace + 3 * args.heartbeat + 2:.0f}s after "
        f"the kill: {dict(sorted(counts.items()))}"
    )


async def main(args: argparse.Namespace) -> None:
    engine = create_engine(args.dsn)
    try:
        await kill_trial(engine, args.dsn, args.redis, args)
        await outage_trial(engine, args.dsn, args.redis, args)
    finally:
        await engine.dispose()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--waiting", type=int, default=2)
    parser.add_argument("--runs", type=int, default=302)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
