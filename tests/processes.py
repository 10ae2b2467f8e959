"""Processes of their own for the cross-process tests and benchmarks:

- ``python -m tests.processes worker DATABASE_URL REDIS_URL TABLE``: a
  TaskConsumer of the example tasks recording into TABLE, printing ``ready``
  once started; each line ``TASK JSON_PARAMS`` on its standard input queues a
  run, and it prints ``queued RUN_ID``; it stops at the end of its input,
  then prints ``writer submitted=N written=N dropped=N pending=N``.
- ``python -m tests.processes mortal DATABASE_URL REDIS_URL TABLE [TASKS
  [GRACE [HEARTBEAT]]]``: the same worker running TASKS runs at a time (2),
  with a heartbeat every HEARTBEAT seconds (0.2) and a grace of GRACE (4),
  printing ``ready WORKER`` (its name in the runs): the tests of lost runs
  kill it and let another one mark its runs.
- ``python -m tests.processes ddl DATABASE_URL TABLE ACTION``: connects,
  prints ``ready``, then at the first line on its standard input runs the
  plugin's ACTION (``create_tables`` or ``upgrade_tables``) and prints
  ``done`` or ``error TYPE: MESSAGE``: processes racing the same DDL.
- ``python -m tests.processes serve DATABASE_URL TABLE``: gql_history's
  history service on a free port of 127.0.0.1, printing ``port N`` once it
  listens; SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
import uvicorn

from examples.app import create_task_manager
from gql_history import TaskHistoryPlugin, create_app, get_history_plugin

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0


def _mortal(
    tasks: str = "2", grace: str = "4", heartbeat: str = "0.2"
) -> dict[str, Any]:
    """The options of a worker whose death the tests want noticed soon."""
    return dict(
        max_concurrent_tasks=int(tasks),
        stopping_grace_period=1.0,  # stopped in a second at the end of a test
        history_options=dict(
            heartbeat_interval=float(heartbeat), worker_grace=float(grace)
        ),
    )


async def _work(database_url: str, redis_url: str, table: str, **options: Any) -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    manager = create_task_manager(
        database_url,
        redis_url=redis_url,
        schedule=False,
        table_name=table,
        sleep_millis=10,  # pick queued runs up at once
        **options,
    )
    await get_history_plugin(manager).create_tables()
    await manager.startup()
    print("ready", get_history_plugin(manager).worker, flush=True)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            task, _, params = line.strip().partition(" ")
            run = await manager.queue(task, **json.loads(params or "{}"))
            print("queued", run.id, flush=True)
    finally:
        await manager.shutdown()
        writer = get_history_plugin(manager).writer
        stats = writer.stats
        print(
            f"writer submitted={stats.submitted} written={stats.written} "
            f"dropped={stats.dropped} pending={writer.pending}",
            flush=True,
        )


async def _ddl(database_url: str, table: str, action: str) -> None:
    plugin = TaskHistoryPlugin(database_url, table_name=table)
    try:
        async with plugin.engine.connect() as conn:  # connected before the race
            await conn.execute(sa.text("SELECT 1"))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        try:
            await getattr(plugin, action)()
        except Exception as exc:
            print(f"error {type(exc).__name__}: {exc}".splitlines()[0], flush=True)
        else:
            print("done", flush=True)
    finally:
        await plugin.engine.dispose()


class _Server(uvicorn.Server):
    """Prints its port once it accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and sockets:
            print("port", sockets[0].getsockname()[1], flush=True)


def _serve(database_url: str, table: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    app = create_app(database_url, table_name=table)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    _Server(config).run(sockets=[listener])


@contextlib.contextmanager
def running(
    *args: str, stderr: IO[str] | None = None, **env: str
) -> Iterator[subprocess.Popen[str]]:
    """Run ``python -m tests.processes args`` (``output_line`` tells when it
    is ready) with ``env`` added to the environment, its standard error to
    ``stderr`` if given; stop it on exit: SIGTERM, then its input closed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.processes", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            if args[0] == "serve":
                process.send_signal(signal.SIGTERM)
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def output_line(
    process: subprocess.Popen[str],
    prefixes: tuple[str, ...],
    timeout: float = READY_TIMEOUT,
) -> str:
    """The next line ``process`` prints starting with one of ``prefixes``
    (libraries may print other lines)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not _readable(process.stdout, left):
            raise AssertionError(
                f"{process.args} printed no {prefixes} in {timeout:.0f}s"
            )
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"{process.args} exited with {process.wait()}")
        if line.startswith(prefixes):
            return line.strip()


def _readable(stream: IO[str], timeout: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def main(args: list[str]) -> None:
    command, *rest = args
    if command == "worker":
        asyncio.run(_work(*rest))
    elif command == "mortal":
        asyncio.run(_work(*rest[:3], **_mortal(*rest[3:])))
    elif command == "ddl":
        asyncio.run(_ddl(*rest))
    elif command == "serve":
        _serve(*rest)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
