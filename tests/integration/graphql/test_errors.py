"""Every error of the GraphQL endpoint: coded, readable, and leaking nothing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException
from starlette.requests import HTTPConnection
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gql_history import (
    HistoryContext,
    HistoryService,
    TaskHistoryPlugin,
    build_schema,
    create_app,
)
from gql_history.core.cursor import Position
from gql_history.core.paging import RunOrder
from tests.factories import T0, run_record
from tests.gql import GraphQL

PAGE = """
query Page($first: Int, $after: String, $last: Int, $before: String) {
  runs(first: $first, after: $after, last: $last, before: $before) {
    edges { node { runId } }
  }
}
"""


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    await history.store.upsert([run_record(f"r{i}") for i in range(3)])
    return history


def messages(errors: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["message"], e["extensions"]["code"]) for e in errors]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 101}, "`first` must be between 0 and 100, not 101"),
        ({"first": -1}, "`first` must be between 0 and 100, not -1"),
        ({"last": 500}, "`last` must be between 0 and 100, not 500"),
        (
            {"first": 1, "last": 1},
            "pass either `first` (with `after`) or `last` (with `before`), not both",
        ),
        (
            {"last": 1, "after": "x"},
            "`after` pages forward: pass it with `first`, or use `before` with `last`",
        ),
        (
            {"first": 1, "before": "x"},
            "`before` pages backward: pass it with `last`, or use `after` with `first`",
        ),
        (
            {"first": 1, "after": "not-a-cursor"},
            "invalid cursor: pass a cursor exactly as a previous page returned it",
        ),
        (
            {"first": 1, "after": ""},
            "invalid cursor: pass a cursor exactly as a previous page returned it",
        ),
    ],
)
async def test_runs_page_arguments_out_of_bounds_are_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin, variables: Any, message: str
) -> None:
    errors = await graphql.errors(PAGE, **variables)
    assert messages(errors) == [(message, "BAD_USER_INPUT")]
    assert errors[0]["path"] == ["runs"]


async def test_runs_altered_cursor_is_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    cursor = seeded.cursors.encode(RunOrder.QUEUED_DESC, Position(T0, "r1"))
    altered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    errors = await graphql.errors(PAGE, first=1, after=altered)
    assert messages(errors) == [
        (
            "invalid cursor: pass a cursor exactly as a previous page returned it",
            "BAD_USER_INPUT",
        )
    ]


async def test_children_page_arguments_out_of_bounds_are_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    query = '{ run(id: "r1") { children(first: 1000) { totalCount } } }'
    errors = await graphql.errors(query)
    assert messages(errors) == [
        ("`first` must be between 0 and 100, not 1000", "BAD_USER_INPUT")
    ]
    assert errors[0]["path"] == ["run", "children"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "{ runs(filter: {state: [DONE]}) { totalCount } }",
            "Value 'DONE' does not exist in 'TaskState' enum.",
        ),
        (
            "{ runs(orderBy: NEWEST) { totalCount } }",
            "Value 'NEWEST' does not exist in 'TaskRunOrder' enum.",
        ),
        (
            "{ runs { edges { node { runId } } }",
            "Syntax Error: Expected Name, found <EOF>.",
        ),
        (
            "{ runs { count } }",
            "Cannot query field 'count' on type 'TaskRunConnection'.",
        ),
        (
            '{ runs(first: "ten") { totalCount } }',
            'Int cannot represent non-integer value: "ten"',
        ),
    ],
)
async def test_invalid_documents_are_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin, query: str, message: str
) -> None:
    assert messages(await graphql.errors(query)) == [(message, "BAD_USER_INPUT")]


async def test_variables_of_the_wrong_type_are_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    errors = await graphql.errors(PAGE, first="ten")
    assert messages(errors) == [
        (
            "Variable '$first' has invalid value: "
            "Int cannot represent non-integer value: 'ten'",
            "BAD_USER_INPUT",
        )
    ]


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (
            b'{"query": "{ tasks { name } }"',
            "application/json",
            "Unable to parse request body as JSON",
        ),
        (
            b'{"variables": {}}',
            "application/json",
            "No GraphQL query found in the request",
        ),
    ],
)
async def test_malformed_request_bodies_are_bad_user_input(
    graphql: GraphQL, content: bytes, content_type: str, message: str
) -> None:
    response = await graphql.client.post(
        "/tasks-graphql", content=content, headers={"content-type": content_type}
    )
    assert (response.status_code, response.json()) == (
        400,
        {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]},
    )


async def test_query_deeper_than_the_limit_is_rejected(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    query = '{ run(id: "r1") { ' + "parent { " * 12 + "runId" + " }" * 12 + " } }"
    assert messages(await graphql.errors(query)) == [
        ("'anonymous' exceeds maximum operation depth of 12", "BAD_USER_INPUT")
    ]


async def test_query_at_the_depth_limit_is_accepted(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    query = '{ run(id: "r1") { ' + "parent { " * 10 + "runId" + " }" * 10 + " } }"
    assert await graphql.data(query) == {"run": {"parent": None}}


async def test_query_with_more_aliases_than_the_limit_is_rejected(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    query = "{ " + " ".join(f"a{i}: tasks {{ name }}" for i in range(31)) + " }"
    assert messages(await graphql.errors(query)) == [
        ("31 aliases found. Allowed: 30", "BAD_USER_INPUT")
    ]


async def test_query_with_more_tokens_than_the_limit_is_rejected(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    query = "{ tasks { " + "name " * 5000 + "} }"
    assert messages(await graphql.errors(query)) == [
        (
            "Syntax Error: Document contains more than 5000 tokens. Parsing aborted.",
            "BAD_USER_INPUT",
        )
    ]


async def test_introspection_is_answered_by_default(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    data = await graphql.data('{ __type(name: "TaskRun") { name } }')
    assert data == {"__type": {"name": "TaskRun"}}


@pytest.fixture(scope="module")
async def strict(database_url: str, fresh_table: str) -> AsyncIterator[GraphQL]:
    """An app with every limit lowered and introspection off."""
    app = create_app(
        database_url,
        table_name=fresh_table,
        max_page_size=5,
        max_query_depth=3,
        max_aliases=1,
        max_tokens=40,
        max_filter_depth=2,
        introspection=False,
    )
    async with _client(app) as client:
        yield GraphQL(client)
    await app.state.history_service.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "{ runs(first: 6) { totalCount } }",
            "`first` must be between 0 and 5, not 6",
        ),
        (
            '{ run(id: "r1") { parent { parent { parent { runId } } } } }',
            "'anonymous' exceeds maximum operation depth of 3",
        ),
        ("{ a: tasks { name } b: tasks { name } }", "2 aliases found. Allowed: 1"),
        (
            "{ tasks { " + "name " * 40 + "} }",
            "Syntax Error: Document contains more than 40 tokens. Parsing aborted.",
        ),
        (
            "{ runs(filter: {not: {not: {}}}) { totalCount } }",
            "the filter nests `and`/`or`/`not` more than 2 levels deep: flatten it",
        ),
        (
            '{ __type(name: "TaskRun") { name } }',
            "GraphQL introspection has been disabled, but the requested query "
            "contained the field '__type'.",
        ),
    ],
)
async def test_limits_set_on_the_plugin_are_enforced(
    strict: GraphQL, seeded: TaskHistoryPlugin, query: str, message: str
) -> None:
    assert messages(await strict.errors(query)) == [(message, "BAD_USER_INPUT")]


async def test_limits_set_on_the_plugin_leave_the_default_schema_alone(
    strict: GraphQL, graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    assert (await strict.data("{ runs(first: 5) { totalCount } }")) == {
        "runs": {"totalCount": 3}
    }
    assert (await graphql.data("{ runs(first: 6) { totalCount } }")) == {
        "runs": {"totalCount": 3}
    }


@pytest.mark.parametrize(
    "db",
    [
        "postgresql://nobody:secret@127.0.0.1:1/nowhere",  # nothing listens
        None,  # the test database, a table that does not exist
    ],
)
async def test_unexpected_errors_are_masked_and_logged(
    database_url: str, caplog: pytest.LogCaptureFixture, db: str | None
) -> None:
    app = create_app(db or database_url, table_name="no_such_table")
    caplog.set_level(logging.ERROR, logger="gql_history")
    async with _client(app) as client:
        errors = await GraphQL(client).errors(
            "{ ok: tasks { name } runs(first: 1) { edges { node { runId } } } }"
        )
    await app.state.history_service.close()
    assert errors == [
        {
            "message": "Internal server error: the request could not be completed.",
            "locations": [{"line": 1, "column": 22}],
            "path": ["runs"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
        }
    ]
    [record] = [r for r in caplog.records if r.name == "gql_history.graphql.errors"]
    assert record.exc_info is not None


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


async def test_graphiql_is_served_on_get(graphql: GraphQL) -> None:
    response = await graphql.client.get(
        "/tasks-graphql", headers={"accept": "text/html"}
    )
    assert response.status_code == 200
    assert "GraphiQL" in response.text


async def test_queries_are_answered_on_get(graphql: GraphQL) -> None:
    response = await graphql.client.get(
        "/tasks-graphql", params={"query": "{ tasks { name } }"}
    )
    assert (response.status_code, response.json()) == (200, {"data": {"tasks": []}})


def auth(connection: HTTPConnection) -> None:
    """Lets in requests (and websockets) carrying the test token."""
    if connection.headers.get("authorization") != "Bearer test":
        raise HTTPException(status_code=401, detail="Not authenticated")


@pytest.fixture(scope="module")
def guarded(database_url: str, fresh_table: str) -> FastAPI:
    return create_app(
        database_url, table_name=fresh_table, dependencies=[Depends(auth)]
    )


async def test_dependencies_guard_graphql_and_rest(guarded: FastAPI) -> None:
    query = {"query": "{ tasks { name } }"}
    token = {"authorization": "Bearer test"}
    async with _client(guarded) as client:
        assert [
            (await client.post("/tasks-graphql", json=query)).status_code,
            (await client.get("/tasks-graphql", params=query)).status_code,
            (await client.get("/tasks-history")).status_code,
            (
                await client.post("/tasks-graphql", json=query, headers=token)
            ).status_code,
        ] == [401, 401, 401, 200]
    await guarded.state.history_service.close()


def test_dependencies_guard_websockets(guarded: FastAPI) -> None:
    with TestClient(guarded) as client:
        with (
            pytest.raises(WebSocketDisconnect),
            client.websocket_connect(
                "/tasks-graphql", subprotocols=["graphql-transport-ws"]
            ),
        ):
            pass
        with client.websocket_connect(
            "/tasks-graphql",
            subprotocols=["graphql-transport-ws"],
            headers={"authorization": "Bearer test"},
        ) as ws:
            ws.send_json({"type": "connection_init"})
            assert ws.receive_json() == {"type": "connection_ack"}


def test_websockets_speak_only_graphql_transport_ws(database_url: str) -> None:
    app = create_app(database_url)
    with TestClient(app) as client:
        with client.websocket_connect(
            "/tasks-graphql", subprotocols=["graphql-transport-ws"]
        ) as ws:
            ws.send_json({"type": "connection_init"})
            assert ws.receive_json() == {"type": "connection_ack"}
            ws.send_json(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": "{ tasks { name } }"},
                }
            )
            assert ws.receive_json() == {
                "id": "1",
                "type": "next",
                "payload": {"data": {"tasks": []}},
            }
            assert ws.receive_json() == {"id": "1", "type": "complete"}
        with (
            client.websocket_connect(
                "/tasks-graphql", subprotocols=["graphql-ws"]
            ) as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            ws.receive_json()
        assert closed.value.code == 4406


@pytest.mark.parametrize(
    "query", ["{ tasks { name }", "{ tasks { " + "name " * 5000 + "} }"]
)
async def test_schema_codes_errors_without_the_http_router(
    history: HistoryService, query: str
) -> None:
    """Websockets and direct calls get coded errors too, parse errors included."""
    result = await build_schema(history.limits).execute(
        query, context_value=HistoryContext(history)
    )
    assert [error.extensions for error in result.errors or []] == [
        {"code": "BAD_USER_INPUT"}
    ]
