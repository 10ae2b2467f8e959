from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fluid.scheduler import TaskConsumer, task_manager_fastapi

from gql_history import TaskHistoryPlugin
from tests.factories import T0, lifecycle, run_record


@pytest.fixture(scope="module")
async def client(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin
) -> AsyncIterator[httpx.AsyncClient]:
    await plugin.store.upsert(
        [
            *lifecycle("rest-1", name="report", params={"region": "eu"}, tags=["b"]),
            run_record("rest-2", name="add", priority="high", params={"region": "us"}),
            run_record("rest-3", name="add", error_type="ValueError", queued=T0),
        ]
    )
    app: FastAPI = task_manager_fastapi(task_manager)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def history(client: httpx.AsyncClient, **params: object) -> list[str]:
    response = await client.get("/tasks-history", params=params)
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["data"]]


async def test_routes_get_run_returns_the_stored_json(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/tasks-history/rest-1")
    assert response.status_code == 200
    assert response.json() == {
        "id": "rest-1",
        "task": "report",
        "priority": "medium",
        "state": "success",
        "queued": "2026-01-01T00:00:00Z",
        "start": "2026-01-01T00:00:01Z",
        "end": "2026-01-01T00:00:02Z",
        "params": {"region": "eu"},
        "from_run_id": "",
        "root_run_id": "",
        "retry_attempt": 0,
        "error_type": None,
        "error_message": None,
        "tags": ["b"],
        "worker": None,
    }


async def test_routes_get_run_is_404_for_an_unknown_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/tasks-history/nope")
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "Task run not found"},
    )


async def test_routes_history_filters(client: httpx.AsyncClient) -> None:
    assert await history(client, params='{"region": "eu"}') == ["rest-1"]
    assert await history(client, priority="high") == ["rest-2"]
    assert await history(client, state="success", task="report") == ["rest-1"]
    assert await history(client, tags="b") == ["rest-1"]
    assert await history(client, task=["add", "report"], start=T0.isoformat()) == [
        "rest-3",
        "rest-2",
        "rest-1",
    ]


async def test_routes_history_cursor_carries_the_query(
    client: httpx.AsyncClient,
) -> None:
    first = (
        await client.get("/tasks-history", params={"task": "add", "limit": 1})
    ).json()
    assert [run["id"] for run in first["data"]] == ["rest-3"]
    second = (
        await client.get("/tasks-history", params={"cursor": first["cursor"]})
    ).json()
    assert ([run["id"] for run in second["data"]], second["cursor"]) == (["rest-2"], "")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"state": "bogus"}, "Input should be 'init', 'queued'"),
        ({"params": "{not json"}, "params must be a JSON object"),
        ({"params": "[1, 2]"}, "params must be a JSON object"),
        ({"limit": 501}, "less than or equal to 500"),
        ({"limit": 0}, "greater than or equal to 1"),
        ({"cursor": "garbage"}, "invalid cursor"),
    ],
)
async def test_routes_history_rejects_bad_input_with_422(
    client: httpx.AsyncClient, params: dict[str, object], message: str
) -> None:
    response = await client.get("/tasks-history", params=params)
    assert response.status_code == 422
    assert message in response.text
    assert "SELECT" not in response.text


async def test_routes_history_rejects_an_altered_cursor(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/tasks-history", params={"limit": 1})).json()
    cursor = page["cursor"]
    altered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    response = await client.get("/tasks-history", params={"cursor": altered})
    assert response.status_code == 422
    assert "invalid cursor" in response.text
