"""Resuming live updates under concurrent writers: how many runs' final
states a reconnecting subscriber never gets, and how many changes it gets
twice (``tests.live_trial``: W aio-fluid worker processes, two server
processes, a reconnect to the other server every ``--session`` seconds).

Run by hand (not part of the tests), on the local PostgreSQL and Redis::

    .venv/bin/python -m bench.live_resume --writers 4 --reconnects 40 --mode after

``--mode after`` resumes with the ``resumeToken`` of the last run received,
``--mode since`` with its ``updated`` (what older versions offer). The table,
``live_resume`` in the database of ``--dsn``, is recreated each run.
"""

from __future__ import annotations

import argparse
import asyncio

import sqlalchemy as sa

from gql_history.db.engine import create_engine
from tests.live_trial import run_trial
from tests.services import clear_broker

DSN = "postgresql://postgres@127.0.0.1:5432/gql_history_bench"
TABLE = "live_resume"


async def measure(args: argparse.Namespace) -> None:
    engine = create_engine(args.dsn)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{TABLE}"'))
    await engine.dispose()
    broker = f"{args.redis}?name=gql-history-bench-resume"
    try:
        result = await run_trial(
            args.dsn,
            broker,
            TABLE,
            writers=args.writers,
            reconnects=args.reconnects,
            session=args.session,
            rate=args.rate,
            mode=args.mode,
        )
    finally:
        clear_broker(broker)
    print(
        f"mode={args.mode} writers={args.writers} replicas=2 "
        f"reconnects={result.reconnects} runs={result.runs} "
        f"received={len(result.received)} lost={len(result.lost)} "
        f"repeated={result.repeated}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=DSN)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--reconnects", type=int, default=40)
    parser.add_argument("--session", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=100.0, help="runs a second")
    parser.add_argument("--mode", choices=("after", "since"), default="after")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
