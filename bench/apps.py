"""The applications the benchmark serves with uvicorn, one process each.

``uvicorn --factory bench.apps:<name>`` builds them from the
environment (``BENCH_DSN``, ``BENCH_TABLE``); ``build`` makes the same apps
in-process, for the EXPLAIN pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from fastapi import FastAPI
from fluid.db import CrudDB
from fluid.scheduler import TaskManager, task_manager_fastapi
from fluid.scheduler.db import TaskDbPlugin

from gql_history import TaskHistoryPlugin
from gql_history.db.engine import async_url, create_engine

#: A broker URL for the task managers; the read apps never connect to it.
BROKER_URL = "redis://127.0.0.1:6379/9"


def graphql_available() -> bool:
    """Whether gql_history has its GraphQL app yet."""
    import gql_history

    return hasattr(gql_history, "create_app")


def peer(dsn: str, table: str) -> FastAPI:
    """aio-fluid's TaskDbPlugin on a TaskManager, as its docs set it up."""
    manager = TaskManager(broker_url=BROKER_URL)
    manager.with_plugin(TaskDbPlugin(CrudDB(async_url(dsn)), table_name=table))
    return task_manager_fastapi(manager)


def ours_rest(dsn: str, table: str) -> FastAPI:
    """gql_history's plugin on a TaskManager: its REST routes."""
    manager = TaskManager(broker_url=BROKER_URL)
    manager.with_plugin(TaskHistoryPlugin(dsn, table_name=table))
    return task_manager_fastapi(manager)


def ours_graphql(dsn: str, table: str) -> FastAPI:
    """gql_history's standalone app serving ``POST /tasks-graphql``."""
    import gql_history

    create_app: Callable[..., FastAPI] = gql_history.create_app  # type: ignore[attr-defined]
    return create_app(dsn, table_name=table)


def ours_graphql_strawberry(dsn: str, table: str) -> FastAPI:
    """Our GraphQL app with the compiled reads off: Strawberry executes all."""
    import gql_history

    create_app: Callable[..., FastAPI] = gql_history.create_app  # type: ignore[attr-defined]
    return create_app(dsn, table_name=table, compiled_reads=False)


def ours_graphql_pool20(dsn: str, table: str) -> FastAPI:
    """Experiment: our GraphQL app over an engine pooling 20 connections.

    gql_history's own engine keeps SQLAlchemy's default 5 (+10 overflow, closed
    on return), fewer than the 16 clients of the load.
    """
    import gql_history

    create_app: Callable[..., FastAPI] = gql_history.create_app  # type: ignore[attr-defined]
    engine = create_engine(dsn, pool_size=20, max_overflow=10)
    return create_app(engine, table_name=table)


APPS: dict[str, Callable[[str, str], FastAPI]] = {
    "peer": peer,
    "ours-rest": ours_rest,
    "ours-graphql": ours_graphql,
    "ours-graphql-strawberry": ours_graphql_strawberry,
    "ours-graphql-pool20": ours_graphql_pool20,
}


def build(target: str, dsn: str, table: str) -> FastAPI:
    """The app of ``target``."""
    return APPS[target](dsn, table)


def _from_env(target: str) -> FastAPI:
    return build(target, os.environ["BENCH_DSN"], os.environ["BENCH_TABLE"])


def peer_app() -> FastAPI:
    """uvicorn factory of the peer app."""
    return _from_env("peer")


def ours_rest_app() -> FastAPI:
    """uvicorn factory of our REST app."""
    return _from_env("ours-rest")


def ours_graphql_app() -> FastAPI:
    """uvicorn factory of our GraphQL app."""
    return _from_env("ours-graphql")


def ours_graphql_strawberry_app() -> FastAPI:
    """uvicorn factory of our GraphQL app without the compiled reads."""
    return _from_env("ours-graphql-strawberry")


def ours_graphql_pool20_app() -> FastAPI:
    """uvicorn factory of the pool experiment."""
    return _from_env("ours-graphql-pool20")


FACTORIES = {
    "peer": "bench.apps:peer_app",
    "ours-rest": "bench.apps:ours_rest_app",
    "ours-graphql": "bench.apps:ours_graphql_app",
    "ours-graphql-strawberry": "bench.apps:ours_graphql_strawberry_app",
    "ours-graphql-pool20": "bench.apps:ours_graphql_pool20_app",
}
