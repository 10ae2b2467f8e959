"""The GraphQL endpoint a task manager's app mounts: live tasks and real runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fluid.scheduler import TaskConsumer, task_manager_fastapi

from gql_history import TaskHistoryPlugin
from tests.conftest import wait_for
from tests.gql import GraphQL

REPORT = "Build a report for a user; fails when asked to, or now and then."
TASKS = """{ tasks {
    name description shortDescription module tags priority schedule
    maxConcurrency timeoutSeconds cpuBound
} }"""


@pytest.fixture(scope="module")
async def app_graphql(task_manager: TaskConsumer) -> AsyncIterator[GraphQL]:
    app = task_manager_fastapi(task_manager)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield GraphQL(client)


async def test_tasks_lists_the_live_registry_by_name(app_graphql: GraphQL) -> None:
    tasks = {task["name"]: task for task in (await app_graphql.data(TASKS))["tasks"]}
    assert list(tasks) == sorted(tasks)
    assert tasks["report"] == {
        "name": "report",
        "description": REPORT,
        "shortDescription": REPORT,
        "module": "gql_history.cli.demo_tasks",
        "tags": ["billing", "reports"],
        "priority": "MEDIUM",
        "schedule": "every(0:00:07)",
        "maxConcurrency": 0,
        "timeoutSeconds": 60,
        "cpuBound": False,
    }
    assert (tasks["add"]["priority"], tasks["add"]["schedule"]) == ("LOW", None)
    assert tasks["exclusive"]["maxConcurrency"] == 1
    assert set(tasks) >= {"add", "fan_out", "heartbeat", "ping", "slow", "stuck"}


async def test_graphql_follows_the_lineage_of_real_runs(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin, app_graphql: GraphQL
) -> None:
    parent = await task_manager.queue_and_wait("fan_out", children=3)
    query = """query ($id: String!) { run(id: $id) {
        task state duration tags
        children { totalCount edges { node {
            task params parent { runId } root { runId }
        } } }
    } }"""

    async def recorded() -> dict[str, Any] | None:
        await plugin.flush()
        run = (await app_graphql.data(query, id=parent.id))["run"]
        return run if run and run["children"]["totalCount"] == 3 else None

    run = await wait_for(recorded)
    assert (run["task"], run["state"], run["tags"]) == (
        "fan_out",
        "SUCCESS",
        ["pipeline"],
    )
    assert run["duration"] >= 0
    assert [edge["node"] for edge in run["children"]["edges"]] == [
        {
            "task": "add",
            "params": {"a": i, "b": 2 * i},
            "parent": {"runId": parent.id},
            "root": {"runId": parent.id},
        }
        for i in range(3)
    ]


async def test_graphql_tags_filter_reads_stored_tags(
    task_manager: TaskConsumer, plugin: TaskHistoryPlugin, app_graphql: GraphQL
) -> None:
    run = await task_manager.queue_and_wait("add", a=1, b=1)
    query = """query ($id: String!) {
        math: runs(filter: {tags: ["math"], task: ["add"]}) { edges { node { runId } } }
        ops: runs(filter: {tags: ["ops"], task: ["add"]}) { totalCount }
        run(id: $id) { state }
    }"""

    async def recorded() -> dict[str, Any] | None:
        await plugin.flush()
        data = await app_graphql.data(query, id=run.id)
        return data if data["run"] and data["run"]["state"] == "SUCCESS" else None

    data = await wait_for(recorded)
    assert run.id in {edge["node"]["runId"] for edge in data["math"]["edges"]}
    assert data["ops"] == {"totalCount": 0}
