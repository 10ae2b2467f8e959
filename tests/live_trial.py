"""A trial of resuming live updates under concurrent writers, with real
processes: W aio-fluid workers (``tests.processes worker``) run a steady
stream of queued runs, two history servers (``tests.processes serve``)
stream them, and one subscriber reconnects every ``session`` seconds to the
other server, resuming from the last run it received: with its
``resumeToken`` (``after``) or its ``updated`` (``since``). Once the runs are
all done, a last session takes what is left; then every run's final version
in the table is looked for among what the subscriber received.

Used by ``tests/e2e/test_live_resume.py`` (asserting) and ``bench.live_resume``
(printing the counts, also against older versions, with ``since``).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gql_history.db.engine import create_engine
from tests.processes import output_line, running
from tests.ws import GraphQLWS

QUERIES = {
    "after": """
subscription($after: String, $since: DateTime) {
  runUpdates(after: $after, since: $since) { runId state updated resumeToken }
}""",
    "since": """
subscription($since: DateTime) {
  runUpdates(since: $since) { runId state updated }
}""",
}
#: Seconds without a message after which the last session ends.
IDLE = 3.0
#: Seconds five processes may take to start on a busy machine.
START_TIMEOUT = 120.0
#: Seconds the workers may take to finish the runs queued.
SETTLE_TIMEOUT = 300.0


@dataclass
class TrialResult:
    """What the subscriber received, against what the table holds."""

    runs: int
    reconnects: int
    received: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, str] = field(default_factory=dict)
    """Each run's last ``updated`` in the table."""

    @property
    def lost(self) -> list[str]:
        """Runs whose final version never came."""
        got = {(run["runId"], run["updated"]) for run in self.received}
        return sorted(
            run for run, updated in self.final.items() if (run, updated) not in got
        )

    @property
    def repeated(self) -> int:
        """Versions that came more than once, counted each time again."""
        counts = Counter((run["runId"], run["updated"]) for run in self.received)
        return sum(count - 1 for count in counts.values())


def _feed(
    workers: list[subprocess.Popen[str]],
    rate: float,
    stop: threading.Event,
    fed: list[int],
) -> None:
    """Have the workers queue ``add`` runs, round robin, ``rate`` a second,
    counting in ``fed`` the runs asked for."""
    while not stop.is_set():
        worker = workers[fed[0] % len(workers)]
        assert worker.stdin is not None
        worker.stdin.write("add {}\n")
        worker.stdin.flush()
        fed[0] += 1
        time.sleep(1 / rate)


def _drain(worker: subprocess.Popen[str], queued: list[str]) -> None:
    """Note the runs ``worker`` queues (its output must be read, not to block)."""
    assert worker.stdout is not None
    for line in worker.stdout:
        if line.startswith("queued "):
            queued.append(line.split()[1])


@contextlib.contextmanager
def _processes(
    database_url: str, broker: str, table: str, writers: int
) -> Iterator[tuple[list[subprocess.Popen[str]], list[str]]]:
    """``writers`` workers and two servers, ready; the servers' URLs."""
    with contextlib.ExitStack() as stack:
        workers = [
            stack.enter_context(running("worker", database_url, broker, table))
            for _ in range(writers)
        ]
        servers = [
            stack.enter_context(running("serve", database_url, table)) for _ in range(2)
        ]
        for worker in workers:
            output_line(worker, ("ready",), START_TIMEOUT)
        ports = [output_line(s, ("port",), START_TIMEOUT).split()[1] for s in servers]
        urls = [f"ws://127.0.0.1:{port}/tasks-graphql" for port in ports]
        yield workers, urls


async def _session(
    url: str, mode: str, resume: dict[str, str], until: float, idle: float | None
) -> list[dict[str, Any]]:
    """What one connection resuming from ``resume`` receives until ``until``
    (monotonic), or, with ``idle``, until that many seconds pass without a
    message."""
    received: list[dict[str, Any]] = []
    async with GraphQLWS.connect(url) as ws:
        await ws.subscribe(QUERIES[mode], **resume)
        while True:
            wait = idle if idle is not None else until - time.monotonic()
            if wait <= 0:
                return received
            try:
                message = await ws.receive(timeout=wait)
            except TimeoutError:
                return received
            assert message["type"] == "next", message
            received.append(message["payload"]["data"]["runUpdates"])


def _resume(mode: str, received: list[dict[str, Any]], start: str) -> dict[str, str]:
    """Where to resume: after the last run received (from the start before)."""
    if not received:
        return {"since": start}
    return {mode: str(received[-1]["resumeToken" if mode == "after" else "updated"])}


async def _settled(
    engine: Any, table: str, queued: list[str], fed: int
) -> dict[str, str]:
    """Each run's final ``updated``, once all ``fed`` runs were queued (the
    workers said so) and every one has finished."""
    query = sa.text(f'SELECT id, state, updated FROM "{table}"')
    async with asyncio.timeout(SETTLE_TIMEOUT):
        while True:
            async with engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            done = {row.id for row in rows if row.state.lower() == "success"}
            if len(queued) >= fed and done >= set(queued):
                return {row.id: row.updated.isoformat() for row in rows}
            await asyncio.sleep(0.2)


async def run_trial(
    database_url: str,
    broker: str,
    table: str,
    *,
    writers: int = 3,
    reconnects: int = 5,
    session: float = 1.0,
    rate: float = 100.0,
    mode: str = "after",
) -> TrialResult:
    """Run the trial on a table the workers create (``table`` must not exist)."""
    engine = create_engine(database_url)
    with _processes(database_url, broker, table, writers) as (workers, urls):
        queued: list[str] = []
        drains = [
            threading.Thread(target=_drain, args=(w, queued), daemon=True)
            for w in workers
        ]
        for drain in drains:
            drain.start()
        stop = threading.Event()
        fed = [0]
        feeder = threading.Thread(target=_feed, args=(workers, rate, stop, fed))
        start = datetime.now(UTC).isoformat()  # before the first run
        feeder.start()
        result = TrialResult(runs=0, reconnects=reconnects)
        try:
            for index in range(reconnects + 1):
                resume = _resume(mode, result.received, start)
                until = time.monotonic() + session
                url = urls[index % 2]
                result.received += await _session(url, mode, resume, until, None)
        finally:
            stop.set()
            feeder.join()
        result.final = await _settled(engine, table, queued, fed[0])
        resume = _resume(mode, result.received, start)
        url = urls[(reconnects + 1) % 2]
        result.received += await _session(url, mode, resume, 0, IDLE)
        result.runs = len(result.final)
    await engine.dispose()
    return result
