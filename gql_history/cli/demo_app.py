"""The demo's aio-fluid application: a task scheduler running the demo tasks
and recording their history (also ``examples/app.py``)."""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from fluid.scheduler import TaskConsumer, TaskScheduler, task_manager_fastapi

from ..core.names import DEFAULT_TABLE_NAME
from ..plugin import TaskHistoryPlugin
from . import demo_tasks


def create_task_manager(
    database_url: str,
    *,
    redis_url: str | None = None,
    schedule: bool = True,
    table_name: str = DEFAULT_TABLE_NAME,
    history_options: dict[str, Any] | None = None,
    **options: Any,
) -> TaskConsumer:
    """A task manager running the example tasks with the history plugin.

    ``options`` go to the task manager, e.g. ``stopping_grace_period``;
    ``history_options`` to the plugin, e.g. ``worker_grace``.
    """
    kind = TaskScheduler if schedule else TaskConsumer
    task_manager = kind(
        broker_url=redis_url or os.environ.get("REDIS_URL", ""), **options
    )
    task_manager.register_from_module(demo_tasks)
    task_manager.with_plugin(
        TaskHistoryPlugin(database_url, table_name=table_name, **history_options or {})
    )
    return task_manager


def create_app(
    database_url: str,
    *,
    redis_url: str | None = None,
    table_name: str = DEFAULT_TABLE_NAME,
    **options: Any,
) -> FastAPI:
    """The FastAPI app of the demo: task routes, history routes, GraphQL."""
    return task_manager_fastapi(
        create_task_manager(
            database_url, redis_url=redis_url, table_name=table_name, **options
        ),
        title="gql_history demo",
    )
