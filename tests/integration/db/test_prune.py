from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fluid.scheduler import TaskState

from gql_history.db.store import HistoryStore
from gql_history.db.tables import retention_table
from tests.factories import T0, run_record

#: run id -> (days before T0 it was queued, its state)
RUNS = {
    "old-ok-1": (40, TaskState.success),
    "old-ok-2": (35, TaskState.success),
    "old-ok-3": (31, TaskState.success),
    "old-failed": (33, TaskState.failure),
    "new-ok": (5, TaskState.success),
    "new-failed": (1, TaskState.failure),
}


@pytest.fixture
async def store(empty_store: HistoryStore) -> HistoryStore:
    store = empty_store
    await store.upsert(
        [
            run_record(run_id, queued=T0 - timedelta(days=days), state=state)
            for run_id, (days, state) in RUNS.items()
        ]
    )
    return store


async def remaining(store: HistoryStore) -> set[str]:
    async with store.engine.connect() as conn:
        return set((await conn.execute(sa.select(store.table.c.id))).scalars())


async def test_prune_deletes_old_runs_in_bounded_batches(store: HistoryStore) -> None:
    cutoff = T0 - timedelta(days=30)
    batches = []
    while (deleted := await store.prune(cutoff, limit=3)) > 0:
        batches.append(deleted)
    assert batches == [3, 1]
    assert await remaining(store) == {"new-ok", "new-failed"}


async def test_prune_deletes_the_oldest_first(store: HistoryStore) -> None:
    assert await store.prune(T0 - timedelta(days=30), limit=2) == 2
    assert await remaining(store) == {
        "old-ok-3",
        "old-failed",
        "new-ok",
        "new-failed",
    }


async def test_prune_keeps_runs_in_other_states(store: HistoryStore) -> None:
    cutoff = T0 - timedelta(days=30)
    assert await store.prune(cutoff, states=[TaskState.success]) == 3
    assert await remaining(store) == {"old-failed", "new-ok", "new-failed"}
    assert await store.prune(cutoff, states=[]) == 0


async def test_prune_of_nothing_old_deletes_nothing(store: HistoryStore) -> None:
    assert await store.prune(T0 - timedelta(days=365)) == 0
    assert await remaining(store) == set(RUNS)


async def test_prune_keeps_a_late_event_from_bringing_a_run_back(
    store: HistoryStore,
) -> None:
    cutoff = T0 - timedelta(days=30)
    while await store.prune(cutoff, states=[TaskState.success]):
        pass
    late = [
        # a pruned run's late (or duplicated) events: neither is inserted
        run_record("old-ok-1", queued=T0 - timedelta(days=40)),
        run_record("old-ok-2", queued=T0 - timedelta(days=35), state=TaskState.running),
        # a run kept by the prune (another state) still takes its updates
        run_record(
            "old-failed",
            queued=T0 - timedelta(days=33),
            state=TaskState.failure,
            retry_attempt=1,
        ),
        # and a run queued after the horizon is inserted as usual
        run_record("new-late", queued=cutoff + timedelta(seconds=1)),
    ]
    await store.upsert(late)
    assert await remaining(store) == {"old-failed", "new-ok", "new-failed", "new-late"}
    [kept] = await store.get_many(["old-failed"])
    assert kept.retry_attempt == 1


async def test_prune_horizon_only_moves_forward(store: HistoryStore) -> None:
    await store.prune(T0 - timedelta(days=30))
    await store.prune(T0 - timedelta(days=365))  # an older horizon changes nothing
    await store.upsert([run_record("late", queued=T0 - timedelta(days=31))])
    assert "late" not in await remaining(store)
    async with store.engine.connect() as conn:
        horizon = await conn.scalar(sa.select(retention_table(store.table).c.horizon))
    assert horizon == T0 - timedelta(days=30)
