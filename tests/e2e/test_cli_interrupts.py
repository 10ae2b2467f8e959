"""Ctrl-C on ``gql-history`` processes: one line, exit 130, exact counts."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_history import TaskHistoryPlugin
from tests.conftest import wait_for
from tests.factories import run_record
from tests.servers import COMMAND, ROOT, command_env

OLD_RUNS = 30_000
BATCH = 20
START_TIMEOUT = 120.0


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(COMMAND), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=command_env(),
        start_new_session=True,
    )


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.text(f'SELECT count(*) FROM "{table}"')))


async def test_cli_prune_interrupted_counts_every_batch_it_deleted(
    database_url: str, engine: AsyncEngine, fresh_table: str
) -> None:
    plugin = TaskHistoryPlugin(database_url, table_name=fresh_table)
    await plugin.create_tables()
    old = datetime.now(UTC) - timedelta(days=40)
    for first in range(0, OLD_RUNS, 5000):
        await plugin.store.upsert(
            [
                run_record(f"old-{i}", state=TaskState.success, queued=old)
                for i in range(first, first + 5000)
            ]
        )
    await plugin.close()
    args = ("prune", "--older-than", "30d", "--batch-size", str(BATCH))
    process = start(*args, "--database-url", database_url, "--table-name", fresh_table)

    async def pruning() -> bool:
        return await count(engine, fresh_table) < OLD_RUNS - 10 * BATCH

    await wait_for(pruning, timeout=START_TIMEOUT)
    process.send_signal(signal.SIGINT)
    stdout, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    left = await count(engine, fresh_table)
    assert (process.returncode, stdout) == (130, "")
    match = re.fullmatch(
        rf"Interrupted: deleted (\d+) runs queued before \S+ from {fresh_table}; "
        "run it again to go on\n",
        stderr,
    )
    assert match is not None, stderr
    assert (int(match[1]), left > 0) == (OLD_RUNS - left, True)


async def test_cli_interrupted_while_starting_prints_one_line() -> None:
    with socket.socket() as silent:  # accepts, never answers: start-up hangs
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(START_TIMEOUT)
        port = silent.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/test"
        process = start("prune", "--older-than", "30d", "--database-url", url)
        connection, _ = await asyncio.to_thread(silent.accept)
        with connection:
            started = time.monotonic()
            process.send_signal(signal.SIGINT)
            stdout, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    assert (process.returncode, stdout, stderr) == (130, "", "Interrupted.\n")
    assert time.monotonic() - started < 5
