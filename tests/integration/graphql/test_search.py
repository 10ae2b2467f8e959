"""Text filters: ``errorContains`` and ``search`` against SQL truth, their
trigram indexes, and the coded error of a database without pg_trgm."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fluid.scheduler import TaskState
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gql_history import HistoryService, create_app
from gql_history.core.filters import RunFilter
from gql_history.core.paging import RunOrder
from gql_history.db import ddl
from gql_history.db.keyset import page_statement
from tests.factories import T0, run_record
from tests.gql import GraphQL, codes
from tests.integration.graphql.test_relay import walk_forward
from tests.plans import plan_of

MESSAGES = (
    "Connection refused by db-1",
    "connection RESET by peer",
    "100% of quota used",
    "value_error in field a_b",
    None,
)
TASKS = ("report", "export_csv", "Reporter", "add")


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    records = []
    for i in range(400):
        message = MESSAGES[i % 5]
        records.append(
            run_record(
                f"{i % 16:x}{i:05d}",
                name=TASKS[i % 4],
                state=TaskState.failure if message else TaskState.success,
                queued=T0 + timedelta(seconds=i // 50),
                error_type="ValueError" if message else None,
                error_message=message,
            )
        )
    await history.store.upsert(records)
    return history


async def truth(history: HistoryService, where: str, **params: str) -> list[str]:
    sql = (
        f'SELECT id FROM "{history.store.table.name}" WHERE {where} '
        "ORDER BY queued DESC, id DESC"
    )
    async with history.store.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).scalars())


def contains(column: str) -> str:
    return f"strpos(lower(coalesce({column}, '')), lower(:t)) > 0"


@pytest.mark.parametrize(
    "needle", ["connection", "REFUSED", "100%", "e_er", "r_in", "_", "zzz"]
)
async def test_runs_error_contains_matches_sql_truth(
    graphql: GraphQL, seeded: HistoryService, needle: str
) -> None:
    expected = await truth(seeded, contains("error_message"), t=needle)
    found = await walk_forward(graphql, 30, filter={"errorContains": needle})
    assert found == expected
    # "r_in" as a LIKE pattern would match "error in": it is taken literally
    assert (needle in ("zzz", "r_in")) is (expected == [])


@pytest.mark.parametrize("needle", ["report", "CSV", "a", "0%", "700"])
async def test_runs_search_matches_name_error_or_id_prefix(
    graphql: GraphQL, seeded: HistoryService, needle: str
) -> None:
    where = (
        f"{contains('name')} OR {contains('error_message')} "
        "OR left(id, length(:t)) = :t"
    )
    expected = await truth(seeded, where, t=needle)
    assert expected
    found = await walk_forward(graphql, 50, filter={"search": needle})
    assert found == expected


async def test_runs_search_combines_with_other_filters(
    graphql: GraphQL, seeded: HistoryService
) -> None:
    where = f"{contains('error_message')} AND name = 'add'"
    expected = await truth(seeded, where, t="connection")
    found = await walk_forward(
        graphql, 20, filter={"errorContains": "connection", "task": ["add"]}
    )
    assert found == expected and expected


@pytest.mark.parametrize(
    ("run_filter", "index"),
    [
        (RunFilter(error_contains="refused"), "error_message_trgm"),
        (RunFilter(search="report"), "name_trgm"),
        (RunFilter(search="abc"), "id_prefix"),
    ],
)
async def test_text_filters_read_their_indexes(
    seeded: HistoryService, run_filter: RunFilter, index: str
) -> None:
    store = seeded.store
    bound = await store.bound(run_filter)
    statement = page_statement(
        store.table,
        await store.select_runs(),
        bound.condition,
        order=RunOrder.QUEUED_DESC,
        backward=False,
        has_start=False,
        probe=False,
        rows=10,
    )
    plan = await plan_of(
        store,
        statement,
        bound.values,
        disabled=("seqscan", "indexscan"),
    )
    assert f"ix_{store.table.name}_{index}" in str(plan)
    assert "Seq Scan" not in str(plan)


@pytest.fixture(scope="module")
async def bare_app(database_url: str) -> AsyncIterator[FastAPI]:
    """The history service over a database of its own, without pg_trgm."""
    url = make_url(database_url)
    bare = f"{url.database}_no_trgm"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{bare}"')
        await conn.execute(f'CREATE DATABASE "{bare}" TEMPLATE template0')
    finally:
        await conn.close()
    bare_url = url.set(database=bare).render_as_string(hide_password=False)
    app = create_app(bare_url, table_name="runs_bare")
    service: HistoryService = app.state.history_service
    yield app
    await service.close()
    await service.store.engine.dispose()
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{bare}"')
    finally:
        await conn.close()


async def test_text_filters_without_pg_trgm_say_how_to_enable_it(
    bare_app: FastAPI,
) -> None:
    service: HistoryService = bare_app.state.history_service
    # the table alone, as where the extension could not be installed
    async with service.store.engine.begin() as conn:
        await conn.run_sync(service.store.table.create)
    assert not await ddl.has_extension(service.store.engine, "pg_trgm")
    transport = httpx.ASGITransport(bare_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        graphql = GraphQL(client)
        query = "query($f: TaskRunFilter) { runs(filter: $f) { totalCount } }"
        errors = await graphql.errors(query, f={"errorContains": "x"})
        assert codes(errors) == ["SEARCH_UNAVAILABLE"]
        assert "CREATE EXTENSION pg_trgm" in errors[0]["message"]
        ok = await graphql.data(query, f={"task": ["x"]})
        assert ok["runs"]["totalCount"] == 0
        response = await client.get("/tasks-history", params={"search": "x"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "search_unavailable"
