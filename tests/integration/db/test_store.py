from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fluid.db import CrudDB
from fluid.scheduler import TaskManager, TaskState
from fluid.scheduler.db import task_meta
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_history import TaskHistoryPlugin, TaskHistoryQuery, TaskRunHistory
from gql_history.cli import demo_tasks as tasks
from gql_history.core.filters import RunFilter
from gql_history.core.paging import RunOrder
from gql_history.db.conditions import bound_filter
from gql_history.db.store import HistoryStore
from gql_history.db.tables import history_table
from tests.factories import T0, lifecycle, run_record


@pytest.fixture(scope="module")
async def store(engine: AsyncEngine, fresh_table: str) -> HistoryStore:
    store = HistoryStore(engine, history_table(sa.MetaData(), fresh_table))
    await store.create_tables()
    await store.create_tables()  # idempotent
    return store


async def stored(store: HistoryStore, run_id: str) -> tuple[object, ...]:
    row = await store.get(run_id)
    assert row is not None
    return row.state, row.start, row.end, row.retry_attempt


async def test_store_upsert_ignores_events_arriving_late(store: HistoryStore) -> None:
    queued, running, success = lifecycle("late")
    for record in (success, running, queued):
        await store.upsert([record])
    assert await stored(store, "late") == (
        TaskState.success,
        success.start,
        success.end,
        0,
    )


async def test_store_upsert_ignores_duplicated_events(store: HistoryStore) -> None:
    queued, running, success = lifecycle("dup")
    for record in (queued, running, running, success, success, running, queued):
        await store.upsert([record])
    assert await stored(store, "dup") == (
        TaskState.success,
        success.start,
        success.end,
        0,
    )


async def test_store_upsert_lets_a_retry_attempt_replace_a_failure(
    store: HistoryStore,
) -> None:
    failed = run_record(
        "retry",
        state=TaskState.failure,
        start=T0,
        end=T0 + timedelta(seconds=1),
        error_type="ValueError",
    )
    retried = run_record("retry", queued=T0 + timedelta(seconds=5), retry_attempt=1)
    late_running = run_record("retry", state=TaskState.running, start=T0)
    for record in (failed, retried, late_running):
        await store.upsert([record])
    row = await store.get("retry")
    assert row is not None
    assert (row.state, row.queued, row.end, row.retry_attempt, row.error_type) == (
        TaskState.queued,
        retried.queued,
        None,
        1,
        None,
    )


async def test_store_upsert_writes_many_runs_in_one_statement(
    store: HistoryStore, engine: AsyncEngine
) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        await store.upsert([run_record(f"batch-{i}") for i in range(300)])
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.startswith("INSERT")]) == 1
    assert len(await store.get_many([f"batch-{i}" for i in range(300)])) == 300


async def test_store_page_reuses_one_statement_for_filters_of_one_shape(
    store: HistoryStore,
) -> None:
    await store.upsert(
        [
            run_record("shape-a", name="shape_a", params={"k": 1}),
            run_record("shape-b", name="shape_b", params={"k": 2}),
            run_record("shape-c", name="shape_c", params={"k": 2}),
        ]
    )

    async def ids(run_filter: RunFilter) -> set[str]:
        page = await store.page(run_filter, limit=10)
        return {row.id for row in page.runs}

    before = len(store.reads)
    assert await ids(RunFilter(task=["shape_a"])) == {"shape-a"}
    assert await ids(RunFilter(task=["shape_b"])) == {"shape-b"}
    assert await ids(RunFilter(task=["shape_a", "shape_c"])) == {"shape-a", "shape-c"}
    assert await ids(RunFilter(task=["shape_b", "shape_c"])) == {"shape-b", "shape-c"}
    assert await ids(RunFilter(params={"k": 2})) == {"shape-b", "shape-c"}
    assert await ids(RunFilter(params={"k": 1})) == {"shape-a"}
    assert len(store.reads) - before == 3  # one task, tasks, params


async def test_store_reads_params_back_exactly(store: HistoryStore) -> None:
    params = {
        "big": 123456789012345678901234567890,
        "tiny": 1e-300,
        "ratio": 0.1,
        "text": 'é \u2028 \\ "quoted"',
        "nested": [{"a": None, "b": True}, []],
    }
    await store.upsert([run_record("params-exact", params=params)])
    row = await store.get("params-exact")
    assert row is not None and row.params == params


def test_bound_filter_shape_tells_nestings_apart(store: HistoryStore) -> None:
    def shape(run_filter: RunFilter) -> tuple[object, ...]:
        present = frozenset(store.table.c.keys())
        return bound_filter(store.table, run_filter, present=present).shape

    task, failed = RunFilter(task=["a"]), RunFilter(state=[TaskState.failure])
    shapes = {
        shape(RunFilter(any_of=[task, failed])),
        shape(RunFilter(any_of=[RunFilter(task=["a"], state=[TaskState.failure])])),
        shape(RunFilter(all_of=[task, failed])),
        shape(RunFilter(any_of=[task], all_of=[failed])),
        shape(RunFilter(any_of=[task], negate=failed)),
        shape(RunFilter(task=["a"], state=[TaskState.failure])),
        shape(RunFilter(task=["a", "b"], state=[TaskState.failure])),
        shape(RunFilter(task=[], state=[TaskState.failure])),
    }
    assert len(shapes) == 8
    assert shape(RunFilter(any_of=[task, failed])) == shape(
        RunFilter(any_of=[RunFilter(task=["b"]), RunFilter(state=[TaskState.success])])
    )


@pytest.fixture(scope="module")
async def legacy_db(database_url: str) -> AsyncIterator[CrudDB]:
    """A table created and filled by aio-fluid's TaskDbPlugin code."""
    db = CrudDB(database_url.replace("postgresql://", "postgresql+asyncpg://"))
    task_meta(db.metadata, table_name="runs_legacy")
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("DROP TABLE IF EXISTS runs_legacy"))
        await conn.run_sync(db.metadata.create_all)
    await db.db_upsert(
        db.tables["runs_legacy"],
        dict(id="legacy-1"),
        dict(
            state=TaskState.success,
            name="report",
            priority="medium",
            queued=T0,
            start=T0,
            end=T0 + timedelta(seconds=3),
            params={"user": "u1"},
        ),
    )
    yield db
    await db.engine.dispose()


async def test_plugin_reads_a_legacy_table_as_it_is(legacy_db: CrudDB) -> None:
    task_manager = TaskManager()
    task_manager.register_from_module(tasks)
    plugin = TaskHistoryPlugin(legacy_db, table_name="runs_legacy")
    task_manager.with_plugin(plugin)
    expected = TaskRunHistory(
        id="legacy-1",
        task="report",
        priority="medium",
        state=TaskState.success,
        queued=T0,
        start=T0,
        end=T0 + timedelta(seconds=3),
        params={"user": "u1"},
        tags=["billing", "reports"],
    )
    assert await plugin.get_run("legacy-1") == expected
    page = await plugin.get_history(TaskHistoryQuery(tags=["billing"]))
    assert page.data == [expected]
    await plugin.store.upsert(lifecycle("legacy-2")[:1])
    assert (await plugin.get_run("legacy-2")).state is TaskState.queued


async def test_plugin_upgrades_a_legacy_table_idempotently(
    legacy_db: CrudDB,
) -> None:
    plugin = TaskHistoryPlugin(legacy_db, table_name="runs_legacy")
    added = await plugin.upgrade_tables()
    assert added == [
        "from_run_id",
        "root_run_id",
        "retry_attempt",
        "error_type",
        "error_message",
        "tags",
        "updated",
        "worker",
        "xact_id",
        "xact_horizon",
    ]
    assert await plugin.upgrade_tables() == []
    await plugin.store.heartbeat("upgraded")  # its workers table is there too
    await plugin.store.upsert(lifecycle("legacy-3", tags=["math"]))
    run = await plugin.get_run("legacy-3")
    assert (run.state, run.tags, run.retry_attempt) == (
        TaskState.success,
        ["math"],
        0,
    )
    assert (await plugin.get_run("legacy-1")).tags == []
    async with legacy_db.engine.connect() as conn:
        indexes = set(
            (
                await conn.execute(
                    sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t"),
                    {"t": "runs_legacy"},
                )
            ).scalars()
        )
    assert {
        f"ix_runs_legacy_{key}_{way}_id"
        for key in ("start", "end", "duration")
        for way in ("desc", "asc")
    } | {"ix_runs_legacy_xact_id_id"} <= indexes


async def test_plugin_orders_a_legacy_table_by_duration(legacy_db: CrudDB) -> None:
    plugin = TaskHistoryPlugin(legacy_db, table_name="runs_legacy")
    page = await plugin.get_history(TaskHistoryQuery(order=RunOrder.DURATION_DESC))
    durations = [
        None if run.end is None or run.start is None else run.end - run.start
        for run in page.data
    ]
    known = [d for d in durations if d is not None]
    assert known == sorted(known, reverse=True) and known
    assert durations == known + [None] * (len(durations) - len(known))
