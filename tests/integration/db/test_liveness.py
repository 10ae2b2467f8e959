"""Heartbeats and lost runs: the reaper against the real table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_history.core.records import LOST_ERROR_TYPE, RunRecord
from gql_history.db.liveness import try_reap_lock
from gql_history.db.monitor import WorkerMonitor
from gql_history.db.store import HistoryStore
from gql_history.db.tables import workers_table
from tests.conftest import wait_for
from tests.factories import beat, run_record

GRACE = 1.0
MARGIN = 5.0


@pytest.fixture
def store(empty_store: HistoryStore) -> HistoryStore:
    return empty_store


def live_run(
    run_id: str, worker: str | None, state: TaskState, **fields: object
) -> RunRecord:
    now = datetime.now(UTC)
    start = now if state is TaskState.running else None
    return run_record(
        run_id,
        state=state,
        queued=now,
        start=fields.pop("start", start),
        worker=worker,
        **fields,
    )


async def reap(store: HistoryStore, **timeouts: float) -> int | None:
    return await store.reap(
        reaper="reaper", grace=GRACE, timeout_margin=MARGIN, timeouts=timeouts
    )


async def states(store: HistoryStore) -> dict[str, TaskState]:
    c = store.table.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(c.id, c.state))
    return {run_id: state for run_id, state in rows}


async def test_reap_marks_a_silent_workers_live_runs_interrupted(
    store: HistoryStore,
) -> None:
    await beat(store, "dead", seconds_ago=10)
    await beat(store, "alive")
    await store.upsert(
        [
            live_run("dead-running", "dead", TaskState.running),
            live_run("dead-queued", "dead", TaskState.queued),
            live_run("dead-done", "dead", TaskState.success),
            live_run("alive-running", "alive", TaskState.running),
            live_run("unknown-worker", "", TaskState.running),  # never beat
            live_run("old-row", None, TaskState.running),  # written before workers
        ]
    )
    assert await reap(store) == 2
    assert await states(store) == {
        "dead-running": TaskState.interrupted,
        "dead-queued": TaskState.interrupted,
        "dead-done": TaskState.success,
        "alive-running": TaskState.running,
        "unknown-worker": TaskState.running,
        "old-row": TaskState.running,
    }
    lost = await store.get("dead-running")
    assert lost is not None and lost.end is not None and lost.start is not None
    assert lost.error_type == LOST_ERROR_TYPE
    assert lost.error_message is not None
    assert lost.error_message.startswith("worker dead stopped sending heartbeats at ")
    assert lost.error_message.endswith("Z; marked interrupted by reaper")
    assert await reap(store) == 0  # nothing left to mark


async def test_reap_marks_runs_past_their_timeout_and_margin(
    store: HistoryStore,
) -> None:
    await beat(store, "alive")
    long_ago = datetime.now(UTC) - timedelta(seconds=30)
    await store.upsert(
        [
            live_run("overdue", "alive", TaskState.running, start=long_ago),
            live_run(
                "in-margin", "alive", TaskState.running, start=long_ago, name="slow"
            ),
            # a task the reaping process does not know
            live_run(
                "unregistered", "alive", TaskState.running, start=long_ago, name="x"
            ),
        ]
    )
    assert await reap(store, add=20, slow=28) == 1
    assert (await states(store))["overdue"] is TaskState.interrupted
    overdue = await store.get("overdue")
    assert overdue is not None
    assert overdue.error_message == (
        "ran past its 20s timeout plus a 5s margin with no end recorded "
        "(worker alive); marked interrupted by reaper"
    )
    assert {k: v for k, v in (await states(store)).items() if k != "overdue"} == {
        "in-margin": TaskState.running,
        "unregistered": TaskState.running,
    }


async def test_reap_lets_a_late_event_of_a_live_worker_correct_the_run(
    store: HistoryStore,
) -> None:
    await beat(store, "slow", seconds_ago=10)
    running = live_run("late", "slow", TaskState.running)
    queued = live_run("stale", "slow", TaskState.queued)
    await store.upsert([running, queued])
    assert await reap(store) == 2
    # the worker was alive: its later events win over the mark ...
    await store.upsert([running])
    corrected = await store.get("late")
    assert corrected is not None
    assert (corrected.state, corrected.end, corrected.error_type) == (
        TaskState.running,
        None,
        None,
    )
    # ... but a duplicated queued event does not undo it
    await store.upsert([queued])
    assert (await states(store))["stale"] is TaskState.interrupted


async def test_reap_acts_in_one_process_at_a_time(
    store: HistoryStore, engine: AsyncEngine
) -> None:
    await beat(store, "dead", seconds_ago=10)
    await store.upsert([live_run("held", "dead", TaskState.running)])
    async with engine.begin() as other:  # another process reaping
        assert await try_reap_lock(other, store.table)
        assert await asyncio.gather(reap(store), reap(store)) == [None, None]
        assert (await states(store))["held"] is TaskState.running
    results = await asyncio.gather(*(reap(store) for _ in range(4)))
    assert results.count(1) == 1 and set(results) <= {1, 0, None}, results
    assert (await states(store))["held"] is TaskState.interrupted


async def test_reap_leaves_every_queued_run_the_broker_still_holds(
    store: HistoryStore,
) -> None:
    await beat(store, "producer", seconds_ago=10)
    await store.upsert(
        [live_run(f"q{i}", "producer", TaskState.queued) for i in range(1, 4)]
    )
    asked = []

    async def waiting(run_ids: Collection[str]) -> set[str]:
        asked.append(sorted(run_ids))
        return {"q1", "q2"} & set(run_ids)  # q3 was taken by the dead process

    for _ in range(3):  # a limit below the candidates, pass after pass
        await store.reap(
            reaper="reaper",
            grace=GRACE,
            timeout_margin=MARGIN,
            timeouts={},
            limit=1,
            waiting=waiting,
        )
    assert await states(store) == {
        "q1": TaskState.queued,
        "q2": TaskState.queued,
        "q3": TaskState.interrupted,
    }
    assert asked[0] == ["q1", "q2", "q3"]


async def test_monitor_judges_no_worker_until_a_grace_after_it_starts(
    store: HistoryStore,
) -> None:
    """After an outage every process's last beat is old: a monitor waits a
    grace, in which the live ones beat again, before it reaps."""
    grace = 5.0
    await beat(store, "dead", seconds_ago=60)
    await store.upsert([live_run("judged", "dead", TaskState.running)])
    monitor = WorkerMonitor(
        store,
        worker="starting",
        interval=0.1,
        grace=grace,
        timeout_margin=MARGIN,
        timeouts=dict,
    )
    started = time.monotonic()
    await monitor.start()
    try:
        await wait_for(lambda: _beaten(store, "starting"))
        if time.monotonic() - started < grace:
            assert (await states(store))["judged"] is TaskState.running
        await wait_for(lambda: _marked(store, "judged"), timeout=grace + 10)
    finally:
        await monitor.close()
    assert time.monotonic() - started >= grace


async def _beaten(store: HistoryStore, worker: str) -> bool:
    workers = workers_table(store.table)
    async with store.engine.connect() as conn:
        found = await conn.scalar(
            sa.select(sa.func.count()).where(workers.c.name == worker)
        )
    return bool(found)


async def _marked(store: HistoryStore, run_id: str) -> bool:
    return (await states(store))[run_id] is TaskState.interrupted
