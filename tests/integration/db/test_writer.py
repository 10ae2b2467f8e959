from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.ext.asyncio import AsyncEngine

from examples.app import create_task_manager
from gql_history import get_history_plugin
from gql_history.db.engine import create_engine
from gql_history.db.store import HistoryStore
from gql_history.db.tables import history_table
from gql_history.db.writer import RunWriter
from tests.conftest import wait_for
from tests.factories import lifecycle, run_record
from tests.proxy import TcpProxy, database_proxy, through


@pytest.fixture(scope="module")
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    async with database_proxy(database_url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def proxied_url(database_url: str, proxy: TcpProxy) -> str:
    return through(database_url, proxy)


@pytest.fixture
async def proxied_store(
    proxied_url: str, fresh_table: str
) -> AsyncIterator[HistoryStore]:
    """A store of the module's table reached through the proxy the tests cut."""
    proxied = create_engine(proxied_url)
    store = HistoryStore(proxied, history_table(sa.MetaData(), fresh_table))
    await store.create_tables()
    yield store
    await proxied.dispose()


@pytest.fixture
async def store(engine: AsyncEngine, fresh_table: str) -> HistoryStore:
    store = HistoryStore(engine, history_table(sa.MetaData(), fresh_table))
    await store.create_tables()
    async with engine.begin() as conn:
        await conn.execute(store.table.delete())
    return store


async def states(store: HistoryStore, run_ids: list[str]) -> dict[str, TaskState]:
    return {row.id: row.state for row in await store.get_many(run_ids)}


async def test_writer_coalesces_a_burst_into_few_statements(
    store: HistoryStore,
) -> None:
    writer = RunWriter(store)
    async with writer:
        for record in (r for i in range(200) for r in lifecycle(f"burst-{i}")):
            writer.submit(record)
        await writer.flush()
    ids = [f"burst-{i}" for i in range(200)]
    assert await states(store, ids) == dict.fromkeys(ids, TaskState.success)
    assert (writer.stats.submitted, writer.stats.written, writer.stats.dropped) == (
        600,
        200,
        0,
    )
    assert writer.stats.batches <= 2


async def test_writer_drops_only_the_row_the_database_rejects(
    store: HistoryStore,
) -> None:
    writer = RunWriter(store)
    async with writer:
        for run_id in ("good-1", "x" * 40, "good-2"):
            writer.submit(run_record(run_id))
        await writer.flush()
    assert await states(store, ["good-1", "good-2", "x" * 40]) == {
        "good-1": TaskState.queued,
        "good-2": TaskState.queued,
    }
    assert (writer.stats.written, writer.stats.dropped) == (2, 1)


async def test_writer_holds_runs_while_the_database_is_unreachable(
    proxied_store: HistoryStore, proxy: TcpProxy, engine: AsyncEngine
) -> None:
    writer = RunWriter(
        proxied_store, max_pending=50, retry_delay=0.05, max_retry_delay=0.2
    )
    async with writer:
        await proxy.cut()
        for i in range(60):
            writer.submit(run_record(f"held-{i}"))
        await asyncio.sleep(0.5)
        assert writer.stats.retries > 0
        await proxy.start()
        await asyncio.wait_for(writer.flush(), 10)
    reader = HistoryStore(engine, proxied_store.table)
    held = await states(reader, [f"held-{i}" for i in range(60)])
    assert (len(held), writer.stats.dropped) == (50, 10)


async def test_plugin_records_every_run_across_a_database_outage(
    proxied_url: str, proxy: TcpProxy, redis_url: str, engine: AsyncEngine
) -> None:
    manager = create_task_manager(
        proxied_url, redis_url=redis_url, schedule=False, table_name="runs_outage"
    )
    plugin = get_history_plugin(manager)
    await plugin.create_tables()
    async with engine.begin() as conn:
        await conn.execute(plugin.table.delete())
    await manager.startup()
    try:
        first = [await manager.queue("add", a=i) for i in range(20)]
        await proxy.cut()
        during = [await manager.queue("add", a=i) for i in range(20)]
        await asyncio.sleep(1.0)
        await proxy.start()
        ids = [run.id for run in first + during]
        reader = HistoryStore(engine, plugin.table)

        async def all_succeeded() -> bool:
            found = await states(reader, ids)
            return found == dict.fromkeys(ids, TaskState.success)

        await wait_for(all_succeeded, timeout=20)
    finally:
        await manager.shutdown()
    assert plugin.writer.stats.dropped == 0


async def test_plugin_writes_pending_runs_when_the_task_manager_stops(
    database_url: str, redis_url: str, engine: AsyncEngine
) -> None:
    manager = create_task_manager(
        database_url, redis_url=redis_url, schedule=False, table_name="runs_shutdown"
    )
    plugin = get_history_plugin(manager)
    await plugin.create_tables()
    async with engine.begin() as conn:
        await conn.execute(plugin.table.delete())
    await manager.startup()
    runs = [await manager.queue_and_wait("add", a=i) for i in range(5)]
    await manager.shutdown()
    reader = HistoryStore(engine, plugin.table)
    ids = [run.id for run in runs]
    assert await states(reader, ids) == dict.fromkeys(ids, TaskState.success)


async def test_store_read_retries_a_connection_the_server_dropped(
    proxied_store: HistoryStore, proxy: TcpProxy
) -> None:
    await proxied_store.upsert([run_record("dropped")])
    assert await proxied_store.get("dropped") is not None
    await proxy.cut()  # the pooled connection is now dead
    await proxy.start()
    row = await proxied_store.get("dropped")
    assert row is not None and row.id == "dropped"


async def test_writer_logs_drops_rate_limited_with_counts(
    proxied_store: HistoryStore, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RunWriter(
        proxied_store, max_pending=10, retry_delay=0.05, max_retry_delay=0.2
    )
    caplog.set_level(logging.ERROR, logger="gql_history.db.writer")
    try:
        async with writer:
            await proxy.cut()
            for i in range(1000):
                writer.submit(run_record(f"flood-{i}"))
                if i % 100 == 0:
                    await asyncio.sleep(0.01)
            writer.abandon("the test stops the writer")
    finally:
        await proxy.start()
    counts = [
        (record.args[0], record.args[1])  # type: ignore[index]
        for record in caplog.records
    ]
    assert counts == [
        (1, f"the buffer of 10 runs or {writer.max_pending_bytes} bytes is full"),
        (989, f"the buffer of 10 runs or {writer.max_pending_bytes} bytes is full"),
        (10, "the test stops the writer"),
    ]
    assert writer.stats.dropped == 1000


async def test_writer_bounds_its_buffer_in_bytes(
    proxied_store: HistoryStore, proxy: TcpProxy, engine: AsyncEngine
) -> None:
    params = {f"field_{i}": "x" * 40 for i in range(40)}  # 2 KB of JSON
    writer = RunWriter(
        proxied_store,
        max_pending_bytes=1_000_000,
        retry_delay=0.05,
        max_retry_delay=0.2,
    )
    async with writer:
        await proxy.cut()
        for i in range(1000):
            writer.submit(run_record(f"big-{i}", params=params))
        held, held_bytes = writer.pending, writer.pending_bytes
        await proxy.start()
        await asyncio.wait_for(writer.flush(), 20)
    written = await states(
        HistoryStore(engine, proxied_store.table), [f"big-{i}" for i in range(1000)]
    )
    assert 100 < held < 200  # about 6.7 KB a run
    assert held_bytes <= 1_000_000
    assert (len(written), writer.stats.dropped) == (held, 1000 - held)
