"""Persisted operations over HTTP (POST and GET) and websockets: Apollo's
automatic persisted queries, and the allow-list of a manifest."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gql_history import HistoryService, create_app
from gql_history.core.persisted import sha256_hex
from tests.factories import run_record
from tests.gql import LEAKS
from tests.ws import GraphQLWS, serving

NAMES = "query Names { taskNames { task count } }"
TAGS = "query Tags { taskTags { tag } }"
UPDATES = "subscription Updates { runUpdates { runId } }"
NOT_FOUND = {
    "errors": [
        {
            "message": "PersistedQueryNotFound",
            "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
        }
    ]
}


def persisted(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(document)}}


@pytest.fixture(scope="module")
async def apps(
    database_url: str, fresh_table: str
) -> AsyncIterator[dict[str, FastAPI]]:
    """The same history with APQ (the default), with APQ off, and with an
    allow-list of two operations (as codegen writes them, hash prefixed)."""
    manifest = {f"sha256:{sha256_hex(doc)}": doc for doc in (NAMES, UPDATES)}
    apps = {
        "apq": create_app(database_url, table_name=fresh_table),
        "off": create_app(
            database_url, table_name=fresh_table, persisted_query_cache=0
        ),
        "listed": create_app(
            database_url, table_name=fresh_table, persisted_documents=manifest
        ),
    }
    service: HistoryService = apps["apq"].state.history_service
    await service.store.create_tables()
    await service.store.upsert([run_record("p-1", name="ping")])
    yield apps
    for app in apps.values():
        await app.state.history_service.close()


@pytest.fixture(scope="module")
async def clients(
    apps: dict[str, FastAPI],
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://test"
        )
        for name, app in apps.items()
    }
    yield clients
    for client in clients.values():
        await client.aclose()


def answer(response: httpx.Response) -> tuple[int, Any]:
    text = response.text
    assert not [leak for leak in LEAKS if leak in text], text
    return response.status_code, response.json()


NAMES_DATA = {"data": {"taskNames": [{"task": "ping", "count": 1}]}}


async def test_persisted_apq_over_post_registers_then_runs_by_hash(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    client = clients["apq"]
    hashed = {"extensions": persisted(NAMES)}
    assert answer(await client.post("/tasks-graphql", json=hashed)) == (200, NOT_FOUND)
    full = {"query": NAMES, **hashed}
    assert answer(await client.post("/tasks-graphql", json=full)) == (200, NAMES_DATA)
    assert answer(await client.post("/tasks-graphql", json=hashed)) == (200, NAMES_DATA)


@pytest.mark.parametrize("accept", ["*/*", "application/json", "text/html"])
async def test_persisted_apq_over_get_answers_rather_than_graphiql(
    clients: dict[str, httpx.AsyncClient], accept: str
) -> None:
    client = clients["apq"]
    params = {
        "operationName": "Tags",
        "variables": "{}",
        "extensions": json.dumps(persisted(TAGS)),
    }
    headers = {"accept": accept}
    get = await client.get("/tasks-graphql", params=params, headers=headers)
    # a first request for TAGS' hash in one of the cases: each is checked
    if answer(get) == (200, NOT_FOUND):
        full = await client.get(
            "/tasks-graphql", params={**params, "query": TAGS}, headers=headers
        )
        assert answer(full) == (200, {"data": {"taskTags": []}})
        get = await client.get("/tasks-graphql", params=params, headers=headers)
    assert answer(get) == (200, {"data": {"taskTags": []}})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"query": TAGS, "extensions": persisted(NAMES)},
            "provided sha does not match query",
        ),
        (
            {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "ab"}}},
            "unsupported persisted query",
        ),
    ],
)
async def test_persisted_apq_refuses_a_malformed_request(
    clients: dict[str, httpx.AsyncClient], body: dict[str, Any], message: str
) -> None:
    status, found = answer(await clients["apq"].post("/tasks-graphql", json=body))
    assert status == 400
    [error] = found["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert message in error["message"]


async def test_persisted_apq_off_answers_not_supported(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    client = clients["off"]
    hashed = {"query": NAMES, "extensions": persisted(NAMES)}
    assert answer(await client.post("/tasks-graphql", json=hashed)) == (
        400,
        {
            "errors": [
                {
                    "message": "PersistedQueryNotSupported",
                    "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
                }
            ]
        },
    )
    plain = await client.post("/tasks-graphql", json={"query": NAMES})
    assert answer(plain) == (200, NAMES_DATA)


async def test_persisted_allow_list_runs_its_operations_only(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    client = clients["listed"]
    by_hash = {"extensions": persisted(NAMES)}
    assert answer(await client.post("/tasks-graphql", json=by_hash)) == (
        200,
        NAMES_DATA,
    )
    params = {"extensions": json.dumps(persisted(NAMES))}
    assert answer(await client.get("/tasks-graphql", params=params)) == (
        200,
        NAMES_DATA,
    )
    whole = {"query": NAMES}  # a listed document sent whole
    assert answer(await client.post("/tasks-graphql", json=whole)) == (200, NAMES_DATA)

    status, found = answer(await client.post("/tasks-graphql", json={"query": TAGS}))
    assert status == 403
    assert [e["extensions"]["code"] for e in found["errors"]] == [
        "QUERY_NOT_IN_SAFELIST"
    ]
    unlisted = {"query": TAGS, "extensions": persisted(TAGS)}  # never learnt
    for body in (unlisted, {"extensions": persisted(TAGS)}):
        status, found = answer(await client.post("/tasks-graphql", json=body))
        assert status == 404
        [error] = found["errors"]
        assert error == {
            "message": f"no operation with hash {sha256_hex(TAGS)} in the "
            "persisted-documents manifest",
            "extensions": {"code": "PERSISTED_QUERY_NOT_IN_LIST"},
        }


async def test_persisted_subscription_over_post_is_refused_as_any(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    body = {"extensions": persisted(UPDATES)}
    status, found = answer(await clients["listed"].post("/tasks-graphql", json=body))
    assert status == 400
    assert "served over a websocket" in found["errors"][0]["message"]


async def test_persisted_allow_list_holds_on_websockets(
    apps: dict[str, FastAPI],
) -> None:
    service: HistoryService = apps["listed"].state.history_service
    async with serving(apps["listed"]) as url, GraphQLWS.connect(url) as ws:
        await ws.send({"id": "adhoc", "type": "subscribe", "payload": {"query": TAGS}})
        refused = await ws.receive()
        assert refused["id"] == "adhoc" and refused["type"] == "error"
        assert [e["extensions"]["code"] for e in refused["payload"]] == [
            "QUERY_NOT_IN_SAFELIST"
        ]
        unknown = {"query": "", "extensions": persisted(TAGS)}
        await ws.send({"id": "unknown", "type": "subscribe", "payload": unknown})
        refused = await ws.receive()
        assert (refused["id"], refused["type"]) == ("unknown", "error")
        assert refused["payload"][0]["extensions"] == {
            "code": "PERSISTED_QUERY_NOT_IN_LIST"
        }
        # the connection goes on: a listed subscription, by hash
        payload = {"extensions": persisted(UPDATES)}
        await ws.send({"id": "live", "type": "subscribe", "payload": payload})
        async with asyncio.timeout(10):
            while not service.live.subscriptions:
                await asyncio.sleep(0.01)
        await service.store.upsert([run_record("p-2")])
        message = await ws.receive()
        assert message == {
            "id": "live",
            "type": "next",
            "payload": {"data": {"runUpdates": {"runId": "p-2"}}},
        }


async def test_persisted_apq_on_websockets_answers_not_found(
    apps: dict[str, FastAPI],
) -> None:
    async with serving(apps["apq"]) as url, GraphQLWS.connect(url) as ws:
        payload = {"extensions": persisted("query Never { tasks { name } }")}
        await ws.send({"id": "1", "type": "subscribe", "payload": payload})
        assert await ws.receive() == {
            "id": "1",
            "type": "error",
            "payload": NOT_FOUND["errors"],
        }
