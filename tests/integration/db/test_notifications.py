"""The change notifications the write path sends, read with a plain LISTEN."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_history.db.notifications import Change, Snapshot, channel_for, parse_change
from gql_history.db.store import HistoryStore
from gql_history.db.tables import history_table
from tests.factories import beat, lifecycle, run_record


@pytest.fixture(scope="module")
async def store(engine: AsyncEngine, fresh_table: str) -> HistoryStore:
    store = HistoryStore(engine, history_table(sa.MetaData(), fresh_table))
    await store.create_tables()
    return store


@pytest.fixture
async def heard(database_url: str, store: HistoryStore) -> AsyncIterator[list[str]]:
    """The payloads notified on the store's channel while the test runs."""
    payloads: list[str] = []
    conn = await asyncpg.connect(database_url)
    await conn.add_listener(store.channel, lambda *args: payloads.append(args[3]))
    yield payloads
    await conn.close()


async def notified(heard: list[str], count: int) -> list[Change]:
    async with asyncio.timeout(5):
        while len(heard) < count:
            await asyncio.sleep(0.01)
    return [parse_change(payload) for payload in heard]


async def notified_until(heard: list[str], run_id: str) -> list[Change]:
    """The changes heard up to the one naming ``run_id``."""
    async with asyncio.timeout(5):
        while not heard or f'"{run_id}"' not in heard[-1]:
            await asyncio.sleep(0.01)
    return [parse_change(payload) for payload in heard]


async def test_store_upsert_notifies_changed_runs_in_chunks_under_8000_bytes(
    store: HistoryStore, heard: list[str]
) -> None:
    records = [
        run_record(f"{i:032d}", state=TaskState.rate_limited) for i in range(500)
    ]
    await store.upsert(records)
    await store.upsert([run_record("end")])
    *changes, end = await notified_until(heard, "end")
    assert len(changes) == 5  # 68 bytes a run, 7,000 a notification
    assert max(len(payload.encode()) for payload in heard) < 8000
    runs = [run for change in changes for run in change.runs]
    assert [(run_id, state) for run_id, state, _ in runs] == [
        (f"{i:032d}", "rate_limited") for i in range(500)
    ]
    first = runs[0][2]
    assert first is not None
    assert [version for _, _, version in runs] == list(range(first, first + 500))
    assert len({change.xid for change in changes}) == 1
    assert [run[:2] for run in end.runs] == [("end", "queued")]
    assert end.xid > changes[0].xid


async def test_store_upsert_notifies_only_what_the_guard_lets_through(
    store: HistoryStore, heard: list[str]
) -> None:
    queued, running, success = lifecycle("guarded")
    for batch in ([success], [running, queued], [success], [run_record("after")]):
        await store.upsert(batch)
    changes = await notified(heard, 2)
    assert [[run[:2] for run in change.runs] for change in changes] == [
        [("guarded", "success")],
        [("after", "queued")],
    ]


async def test_store_upsert_notifies_nothing_it_rolls_back(
    store: HistoryStore, heard: list[str]
) -> None:
    async with store.engine.connect() as conn, conn.begin() as transaction:
        await store.write(conn, [run_record("undone")])
        await transaction.rollback()
    await store.upsert([run_record("done")])
    assert [
        [run[:2] for run in change.runs] for change in await notified(heard, 1)
    ] == [[("done", "queued")]]
    assert len(heard) == 1


def test_channel_for_stays_within_postgresql_identifiers() -> None:
    short = history_table(sa.MetaData(), "fluid_tasks")
    long = history_table(sa.MetaData(), "t" * 63)
    assert channel_for(short) == "gql_history:fluid_tasks"
    assert len(channel_for(long)) <= 63
    assert channel_for(long) != channel_for(history_table(sa.MetaData(), "u" * 63))


def test_snapshot_saw_what_committed_before_it() -> None:
    snapshot = Snapshot.parse("100:105:100,103")
    assert [xid for xid in range(98, 107) if snapshot.saw(xid)] == [
        98,
        99,
        101,
        102,
        104,
    ]
    assert Snapshot.parse("7:7:").saw(6) and not Snapshot.parse("7:7:").saw(7)


async def test_store_reap_notifies_the_runs_it_marks(
    store: HistoryStore, heard: list[str]
) -> None:
    await beat(store, "gone", seconds_ago=60)
    await store.upsert([run_record("reaped", state=TaskState.running, worker="gone")])
    marked = await store.reap(reaper="me", grace=30, timeout_margin=0, timeouts={})
    assert marked == 1
    changes = await notified(heard, 2)  # the write, then the mark
    assert [run[:2] for change in changes for run in change.runs] == [
        ("reaped", "running"),
        ("reaped", "interrupted"),
    ]
