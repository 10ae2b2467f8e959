from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from fluid.scheduler import TaskConsumer, TaskPriority, TaskState
from yarl import URL

from examples.app import create_task_manager
from gql_history import (
    RunNotFoundError,
    TaskHistoryPlugin,
    TaskHistoryQuery,
    TaskRunHistory,
    get_history_plugin,
)
from gql_history.plugin import RECORDED_STATES
from tests.conftest import wait_for
from tests.factories import beat, run_record
from tests.services import clear_broker, own_broker


async def finished(plugin: TaskHistoryPlugin, run_id: str) -> TaskRunHistory:
    """The stored run once the history shows it finished."""

    async def check() -> TaskRunHistory | None:
        await plugin.flush()
        try:
            run = await plugin.get_run(run_id)
        except RunNotFoundError:
            return None
        return run if run.state.is_done else None

    return await wait_for(check)


def test_plugin_registers_async_handlers_for_every_lifecycle_state(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin
) -> None:
    handlers = task_manager._async_dispatcher_worker.dispatcher._msg_handlers
    assert {str(s) for s in RECORDED_STATES} == {
        state for state, tags in handlers.items() if plugin.tag in tags
    }
    assert get_history_plugin(task_manager) is plugin


async def test_plugin_records_success(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin
) -> None:
    task_run = await task_manager.queue_and_wait("add", a=3, b=4)
    run = await finished(plugin, task_run.id)
    assert run == TaskRunHistory(
        id=task_run.id,
        task="add",
        priority=TaskPriority.low,
        state=TaskState.success,
        queued=task_run.queued,
        start=task_run.start,
        end=task_run.end,
        params={"a": 3, "b": 4},
        from_run_id="",
        root_run_id="",
        retry_attempt=0,
        error_type=None,
        error_message=None,
        tags=["math"],
        worker=plugin.worker,
    )


async def test_plugin_records_failure_with_its_error(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin
) -> None:
    task_run = await task_manager.queue_and_wait("report", user="u9", fail=True)
    run = await finished(plugin, task_run.id)
    assert run.state is TaskState.failure
    assert run.error_type == "ValueError"
    assert run.error_message == "report for u9 has no data"
    assert run.end is not None


async def test_plugin_records_timeout_as_failure(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin
) -> None:
    task_run = await task_manager.queue_and_wait("stuck", seconds=0, timeout=10)
    run = await finished(plugin, task_run.id)
    assert (run.state, run.error_type, run.error_message) == (
        TaskState.failure,
        "TimeoutError",
        "ran past its 1s timeout",
    )


async def test_plugin_records_aborted(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin
) -> None:
    task_run = await task_manager.queue_and_wait("cancelled")
    run = await finished(plugin, task_run.id)
    assert (run.state, run.error_type) == (TaskState.aborted, None)


async def test_plugin_skips_runs_of_tasks_with_the_skip_tag(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin
) -> None:
    skipped = await task_manager.queue_and_wait("heartbeat")
    recorded = await task_manager.queue_and_wait("add")
    await finished(plugin, recorded.id)
    with pytest.raises(RunNotFoundError):
        await plugin.get_run(skipped.id)


async def test_plugin_records_lineage_of_queued_children(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin
) -> None:
    parent = await task_manager.queue_and_wait("fan_out", children=2)
    await finished(plugin, parent.id)

    async def children() -> list[TaskRunHistory]:
        await plugin.flush()
        page = await plugin.get_history(TaskHistoryQuery(task="add", limit=500))
        found = [run for run in page.data if run.from_run_id == parent.id]
        return found if len(found) == 2 and all(r.end for r in found) else []

    runs = await wait_for(children)
    assert {(run.params["a"], run.root_run_id) for run in runs} == {
        (0, parent.id),
        (1, parent.id),
    }


async def test_plugin_records_rate_limited(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin
) -> None:
    first, second = await asyncio.gather(
        task_manager.queue_and_wait("exclusive", seconds=1.0),
        task_manager.queue_and_wait("exclusive", seconds=1.0),
    )
    runs = [await finished(plugin, r.id) for r in (first, second)]
    assert sorted(run.state for run in runs) == [
        TaskState.rate_limited,
        TaskState.success,
    ]


async def test_plugin_filters_by_tags_stored_with_each_run(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin
) -> None:
    task_run = await task_manager.queue_and_wait("report", user="tagged")
    await finished(plugin, task_run.id)
    page = await plugin.get_history(TaskHistoryQuery(tags=["billing"], limit=500))
    assert task_run.id in {run.id for run in page.data}
    assert {run.task for run in page.data} == {"report"}


async def test_plugin_reaper_leaves_runs_still_waiting_on_the_broker(
    database_url: str, redis_url: str, fresh_table: str
) -> None:
    """A process that only queued a run has not lost it when it dies: the
    run waits on Redis for a live worker. One it had taken is lost."""
    broker = own_broker(str(URL(redis_url).with_query({})))
    idle = dict(schedule=False, table_name=fresh_table, consume_tasks=False)
    beating = dict(heartbeat_interval=0, worker_grace=1.0)  # beats by hand
    async with AsyncExitStack() as stack:
        stack.callback(clear_broker, broker)
        managers = []
        for _ in range(2):  # the process that dies, and the reaper
            manager = create_task_manager(
                database_url, redis_url=broker, history_options=beating, **idle
            )
            await get_history_plugin(manager).create_tables()
            await manager.startup()
            stack.push_async_callback(manager.shutdown)
            managers.append(manager)
        dead, reaper = (get_history_plugin(manager) for manager in managers)
        waiting = await managers[0].queue("add", a=1, b=2)
        taken = run_record("taken-run", state=TaskState.queued, worker=dead.worker)
        await dead.store.upsert([taken])
        await dead.flush()
        await beat(dead.store, dead.worker, seconds_ago=10)
        assert await reaper.monitor.beat() == 1
        assert (await dead.get_run(waiting.id)).state is TaskState.queued
        assert (await dead.get_run(taken.id)).state is TaskState.interrupted
