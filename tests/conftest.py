from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fluid.scheduler import TaskConsumer
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from examples.app import create_task_manager
from gql_history import (
    HistoryService,
    TaskHistoryPlugin,
    create_app,
    get_history_plugin,
)
from gql_history.cli.embedded import EmbeddedServices
from gql_history.db.engine import create_engine
from gql_history.db.tables import history_table
from tests import services
from tests.gql import GraphQL


@pytest.fixture(scope="session")
def embedded() -> Iterator[EmbeddedServices]:
    """Embedded servers, started only for what the machine does not provide."""
    with EmbeddedServices(services.DATA_DIR) as embedded:
        yield embedded


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> str:
    """``DATABASE_URL`` as given, else the suite's own database."""
    if configured := os.environ.get("DATABASE_URL"):
        return configured
    server = (
        services.local_server() or request.getfixturevalue("embedded").start_postgres()
    )
    return services.own_database(server)


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """The Redis to use, with a broker name (key prefix) of this session's own."""
    url = services.redis_url() or request.getfixturevalue("embedded").start_redis()
    return services.own_broker(url)


@pytest.fixture(scope="module")
def table_name(request: pytest.FixtureRequest) -> str:
    """A table of the test module's own, so modules never see each other's runs."""
    return "runs_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def fresh_table(engine: AsyncEngine, table_name: str) -> str:
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP TABLE IF EXISTS "{table_name}"'))
        # and the tables beside it (workers, retention horizon)
        for side in history_table(MetaData(), table_name).info["side_tables"]:
            await conn.execute(text(f'DROP TABLE IF EXISTS "{side.name}"'))
    return table_name


@pytest.fixture(scope="module")
async def task_manager(
    database_url: str, redis_url: str, fresh_table: str
) -> AsyncIterator[TaskConsumer]:
    """A running consumer of the example tasks, recording into a fresh table."""
    manager = create_task_manager(
        database_url, redis_url=redis_url, schedule=False, table_name=fresh_table
    )
    await get_history_plugin(manager).create_tables()
    await manager.startup()
    yield manager
    await manager.shutdown()
    await manager.broker.clear()


@pytest.fixture(scope="module")
def plugin(task_manager: TaskConsumer) -> TaskHistoryPlugin:
    return get_history_plugin(task_manager)


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy, within ``timeout``."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.02)
        return result


@pytest.fixture(scope="module")
async def history_app(database_url: str, fresh_table: str) -> AsyncIterator[FastAPI]:
    """gql_history's read-only history service over a fresh table."""
    app = create_app(database_url, table_name=fresh_table)
    service: HistoryService = app.state.history_service
    await service.store.create_tables()
    yield app
    await service.close()
    await service.store.engine.dispose()


@pytest.fixture(scope="module")
def history(history_app: FastAPI) -> HistoryService:
    """The service of ``history_app``, to seed its table through the store."""
    service: HistoryService = history_app.state.history_service
    return service


@pytest.fixture(scope="module")
async def graphql(history_app: FastAPI) -> AsyncIterator[GraphQL]:
    """A client of ``history_app``'s GraphQL endpoint."""
    transport = httpx.ASGITransport(history_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield GraphQL(client)


@pytest.fixture(scope="module")
async def rest(history_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client of ``history_app`` (its REST routes)."""
    transport = httpx.ASGITransport(history_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client
