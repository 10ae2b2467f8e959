"""Prepared queries: a query the compiled path answered once is answered
again without Strawberry's request pipeline, and still exactly as the
pipeline answers it, within every limit that depends on the request (its
variables' count and cost, their types, cursors, the scope, the app's
dependencies, persisted documents)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException
from starlette.requests import HTTPConnection

from gql_history import RunFilter, create_app
from gql_history.core.persisted import sha256_hex
from gql_history.graphql.schema import HistorySchema
from tests.factories import T0, run_record

TOKEN = {"authorization": "Bearer test"}
PAGE = """
query Page($first: Int, $after: String, $kids: Int) {
  runs(first: $first, after: $after) {
    edges { cursor node { runId task children(first: $kids) { totalCount } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
NODES = "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { id } }"


def auth(connection: HTTPConnection) -> None:
    """Lets in requests carrying the test token."""
    if connection.headers.get("authorization") != TOKEN["authorization"]:
        raise HTTPException(status_code=401, detail="Not authenticated")


def scope(connection: HTTPConnection) -> RunFilter | None:
    """Requests with ``x-task`` read that task's runs only."""
    task = connection.headers.get("x-task")
    return None if task is None else RunFilter(task=[task])


@pytest.fixture(scope="module")
async def clients(
    database_url: str, fresh_table: str
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """The same history, compiled and by Strawberry alone, behind a token."""
    apps: list[FastAPI] = [
        create_app(
            database_url,
            table_name=fresh_table,
            compiled_reads=on,
            dependencies=[Depends(auth)],
            scope=scope,
            max_cost=500,
            max_variable_values=20,
        )
        for on in (True, False)
    ]
    store = apps[0].state.history_service.store
    await store.create_tables()
    await store.upsert(
        [
            run_record(
                f"run-{i:02d}",
                name=("add", "report")[i % 2],
                queued=T0 + timedelta(seconds=i),
                from_run_id="" if i < 2 else f"run-{i % 2:02d}",
            )
            for i in range(12)
        ]
    )
    found = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t", headers=TOKEN
        )
        for app in apps
    ]
    yield found
    for client, app in zip(found, apps, strict=True):
        await client.aclose()
        await app.state.history_service.close()


@pytest.fixture
def pipelines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str | None]]:
    """The documents Strawberry's pipeline executes meanwhile (observed)."""
    seen: list[str | None] = []
    execute = HistorySchema.execute

    async def observed(
        self: HistorySchema, query: str | None, *a: Any, **k: Any
    ) -> Any:
        seen.append(query)
        return await execute(self, query, *a, **k)

    monkeypatch.setattr(HistorySchema, "execute", observed)
    yield seen


def document(query: str, name: str) -> str:
    """``query`` as a document of its own (a comment changes the text that
    keys prepared queries), so each test prepares its own."""
    return f"{query}# {name}\n"


async def both(
    clients: list[httpx.AsyncClient],
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """The status and JSON both apps answer ``body`` with (the same)."""
    answers = []
    for client in clients:
        response = await client.post("/tasks-graphql", json=body, headers=headers)
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]
    return answers[0]


async def test_prepared_query_skips_the_pipeline_and_answers_the_same(
    clients: list[httpx.AsyncClient], pipelines: list[str | None]
) -> None:
    query = document(PAGE, "skips")
    first = await both(clients, {"query": query, "variables": {"first": 5}})
    assert pipelines == [query, query]  # each app's first: the pipeline
    cursor = first[1]["data"]["runs"]["pageInfo"]["endCursor"]
    for variables in ({"first": 3, "kids": 1}, {"first": 4, "after": cursor}):
        status, data = await both(clients, {"query": query, "variables": variables})
        assert status == 200 and data["data"]["runs"]["edges"]
    assert pipelines == [query] * 4  # the compiled app's pipeline ran once


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        (PAGE, {"first": 20, "kids": 30}, "may read up to 620 runs, more than 500"),
        (PAGE, {"first": "x", "kids": 1}, "Int cannot represent non-integer value"),
        (PAGE, {"after": "bogus", "kids": 1}, "cursor"),
        (PAGE, {"first": -1, "kids": 1}, "first"),
        (NODES, {"ids": ["VGFza1J1bjpydW4tMDE="] * 25},
         "the variables hold more than 20 values"),
    ],
)  # fmt: skip
async def test_prepared_query_keeps_the_limits_of_each_request(
    clients: list[httpx.AsyncClient],
    pipelines: list[str | None],
    query: str,
    variables: dict[str, Any],
    message: str,
) -> None:
    """Variables over the cost or count, of the wrong type, or a bad cursor
    or page size: the error the pipeline gives, after the query was prepared."""
    query = document(query, f"limits {message}")
    prepare = {"ids": []} if "ids" in variables else {"first": 2, "kids": 1}
    _, prepared_answer = await both(clients, {"query": query, "variables": prepare})
    assert "errors" not in prepared_answer
    prepared = len(pipelines)
    status, answer = await both(clients, {"query": query, "variables": variables})
    [error] = answer["errors"]
    assert status == 200 and message in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert pipelines[prepared:] == [query, query]  # refused by each pipeline


async def test_prepared_query_stays_behind_the_dependencies_and_scope(
    clients: list[httpx.AsyncClient], pipelines: list[str | None]
) -> None:
    body = {"query": document(PAGE, "guarded"), "variables": {"first": 12, "kids": 1}}
    assert (await both(clients, body))[0] == 200
    refused = await clients[0].post(
        "/tasks-graphql", json=body, headers={"authorization": "Bearer other"}
    )
    assert refused.status_code == 401
    _, scoped = await both(clients, body, headers={"x-task": "report"})
    tasks = [edge["node"]["task"] for edge in scoped["data"]["runs"]["edges"]]
    assert tasks == ["report"] * 6
    assert len(pipelines) == 3  # the scoped request was a prepared one too


async def test_prepared_query_is_answered_by_its_persisted_hash(
    clients: list[httpx.AsyncClient], pipelines: list[str | None]
) -> None:
    query = "query Newest { runs(first: 2) { edges { node { runId } } } }"
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}
    full = await both(clients, {"query": query, "extensions": persisted})
    by_hash = await both(clients, {"extensions": persisted})
    assert by_hash == full and len(full[1]["data"]["runs"]["edges"]) == 2
    assert pipelines == [query] * 3  # the compiled app's second: prepared


async def test_prepared_path_leaves_other_requests_to_the_pipeline(
    clients: list[httpx.AsyncClient], pipelines: list[str | None]
) -> None:
    """A query sent by GET, or in a batch, takes the pipeline, prepared or not."""
    query = document(PAGE, "others")
    body = {"query": query, "variables": {"first": 1}}
    _, answer = await both(clients, body)
    got = await clients[0].get(
        "/tasks-graphql",
        params={"query": query, "variables": json.dumps({"first": 1})},
        headers={"accept": "application/json"},
    )
    assert got.json() == answer
    batch = await clients[0].post("/tasks-graphql", json=[body])
    assert batch.status_code == 400  # batching is off
    assert pipelines == [query, query, query]
