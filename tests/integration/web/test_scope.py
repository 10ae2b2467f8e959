"""Row-level scope: two teams behind one endpoint, each reading its own runs
on every read path (GraphQL fields, lineage, statistics, facets, live
updates and REST), a run of the other team reading as a missing one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fluid.scheduler import TaskState
from starlette.requests import HTTPConnection
from strawberry import relay

from gql_history import HistoryService, RunFilter, TaskHistoryPlugin, create_app
from tests.factories import T0, run_record
from tests.gql import GraphQL
from tests.ws import GraphQLWS, serving

TEAM_A = {"x-team": "a"}
TEAM_B = {"x-team": "b"}
RUN_IDS = ["a-root", "a-child", "b-child", "b-grandchild"]


async def team_scope(connection: HTTPConnection) -> RunFilter | None:
    """Team ``x-team`` reads the runs whose params name it; no header, all."""
    team = connection.headers.get("x-team")
    if team == "nobody":
        raise HTTPException(status_code=403, detail="Forbidden")
    return None if team is None else RunFilter(params={"team": team})


def _seed() -> list[Any]:
    lineage = {"from_run_id": "a-root", "root_run_id": "a-root"}
    return [
        run_record(
            "a-root",
            name="fan_out",
            state=TaskState.success,
            queued=T0 + timedelta(minutes=1),
            params={"team": "a"},
            tags=["pipeline"],
        ),
        run_record(
            "a-child",
            state=TaskState.success,
            queued=T0 + timedelta(minutes=2),
            params={"team": "a", "n": 1},
            tags=["math"],
            **lineage,
        ),
        run_record(
            "b-child",
            name="report",
            state=TaskState.failure,
            queued=T0 + timedelta(minutes=3),
            params={"team": "b"},
            tags=["reports"],
            **lineage,
        ),
        run_record(
            "b-grandchild",
            queued=T0 + timedelta(minutes=4),
            params={"team": "b", "n": 2},
            tags=["math"],
            from_run_id="b-child",
            root_run_id="a-root",
        ),
    ]


@pytest.fixture(scope="module")
async def scoped_app(database_url: str, fresh_table: str) -> AsyncIterator[FastAPI]:
    app = create_app(database_url, table_name=fresh_table, scope=team_scope)
    service: HistoryService = app.state.history_service
    await service.store.create_tables()
    await service.store.upsert(_seed())
    yield app
    await service.close()


@pytest.fixture(scope="module")
async def client(scoped_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(scoped_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def graphql(client: httpx.AsyncClient, team: dict[str, str]) -> GraphQL:
    """A GraphQL client sending ``team``'s header."""
    return GraphQL(client, headers=team)


def global_id(run_id: str) -> str:
    return relay.to_base64("TaskRun", run_id)


RUNS = """
query Runs($filter: TaskRunFilter) {
  runs(filter: $filter, first: 10) { totalCount edges { node { runId } } }
}
"""

LOOKUPS = """
query Lookups($ids: [ID!]!, $a: String!, $b: String!, $gA: ID!) {
  a: run(id: $a) { runId }
  b: run(id: $b) { runId }
  missing: run(id: "no-such-run") { runId }
  node(id: $gA) { ... on TaskRun { runId } }
  nodes(ids: $ids) { ... on TaskRun { runId } }
}
"""

LINEAGE = """
query Lineage($id: String!) {
  run(id: $id) {
    runId
    parent { runId }
    root { runId }
    children(first: 10) { totalCount edges { node { runId } } }
  }
}
"""

OVERVIEW = """
query Overview {
  runStats(filter: {queuedAfter: "2026-01-01T00:00:00+00:00"}, bucket: DAY) {
    total byState { state count } byTask { task count }
  }
  taskNames { task count }
  taskTags { tag count }
}
"""


def page(*run_ids: str) -> dict[str, Any]:
    return {
        "totalCount": len(run_ids),
        "edges": [{"node": {"runId": run_id}} for run_id in run_ids],
    }


@pytest.mark.parametrize(
    ("team", "expected"),
    [
        (TEAM_A, page("a-child", "a-root")),
        (TEAM_B, page("b-grandchild", "b-child")),
        ({}, page("b-grandchild", "b-child", "a-child", "a-root")),
    ],
)
async def test_scope_narrows_runs(
    client: httpx.AsyncClient, team: dict[str, str], expected: dict[str, Any]
) -> None:
    assert await graphql(client, team).data(RUNS) == {"runs": expected}


async def test_scope_is_anded_with_the_filter_asked_for(
    client: httpx.AsyncClient,
) -> None:
    """No filter widens a scope, however it combines."""
    team_a = graphql(client, TEAM_A)
    for run_filter in (
        {"params": {"team": "b"}},
        {"or": [{"params": {"team": "b"}}, {"task": ["report"]}]},
        {"not": {"params": {"team": "a"}}},
    ):
        assert await team_a.data(RUNS, filter=run_filter) == {"runs": page()}
    assert await team_a.data(RUNS, filter={"tags": ["math"]}) == {
        "runs": page("a-child")
    }


@pytest.mark.parametrize(
    ("team", "found"),
    [(TEAM_A, ["a-root", "a-child"]), (TEAM_B, ["b-child", "b-grandchild"])],
)
async def test_scope_reads_a_run_outside_it_as_missing(
    client: httpx.AsyncClient, team: dict[str, str], found: list[str]
) -> None:
    data = await graphql(client, team).data(
        LOOKUPS,
        a="a-root",
        b="b-child",
        gA=global_id("a-child"),
        ids=[global_id(run_id) for run_id in [*RUN_IDS, "no-such-run"]],
    )
    assert data == {
        "a": {"runId": "a-root"} if "a-root" in found else None,
        "b": {"runId": "b-child"} if "b-child" in found else None,
        "missing": None,
        "node": {"runId": "a-child"} if "a-child" in found else None,
        "nodes": [{"runId": r} if r in found else None for r in RUN_IDS] + [None],
    }


@pytest.mark.parametrize(
    ("team", "run_id", "parent", "root", "children"),
    [
        (TEAM_A, "a-root", None, None, ["a-child"]),
        (TEAM_A, "a-child", "a-root", "a-root", []),
        # its parent and root are team a's: missing, as its sibling a-child
        (TEAM_B, "b-child", None, None, ["b-grandchild"]),
        (TEAM_B, "b-grandchild", "b-child", None, []),
        ({}, "a-root", None, None, ["a-child", "b-child"]),
        ({}, "b-grandchild", "b-child", "a-root", []),
    ],
)
async def test_scope_narrows_lineage(
    client: httpx.AsyncClient,
    team: dict[str, str],
    run_id: str,
    parent: str | None,
    root: str | None,
    children: list[str],
) -> None:
    data = await graphql(client, team).data(LINEAGE, id=run_id)
    assert data == {
        "run": {
            "runId": run_id,
            "parent": parent and {"runId": parent},
            "root": root and {"runId": root},
            "children": page(*children),
        }
    }


@pytest.mark.parametrize(
    ("team", "expected"),
    [
        (
            TEAM_A,
            {
                "runStats": {
                    "total": 2,
                    "byState": [{"state": "SUCCESS", "count": 2}],
                    "byTask": [
                        {"task": "add", "count": 1},
                        {"task": "fan_out", "count": 1},
                    ],
                },
                "taskNames": [
                    {"task": "add", "count": 1},
                    {"task": "fan_out", "count": 1},
                ],
                "taskTags": [
                    {"tag": "math", "count": 1},
                    {"tag": "pipeline", "count": 1},
                ],
            },
        ),
        (
            TEAM_B,
            {
                "runStats": {
                    "total": 2,
                    "byState": [
                        {"state": "QUEUED", "count": 1},
                        {"state": "FAILURE", "count": 1},
                    ],
                    "byTask": [
                        {"task": "add", "count": 1},
                        {"task": "report", "count": 1},
                    ],
                },
                "taskNames": [
                    {"task": "add", "count": 1},
                    {"task": "report", "count": 1},
                ],
                "taskTags": [
                    {"tag": "math", "count": 1},
                    {"tag": "reports", "count": 1},
                ],
            },
        ),
    ],
)
async def test_scope_narrows_statistics_and_facets(
    client: httpx.AsyncClient, team: dict[str, str], expected: dict[str, Any]
) -> None:
    assert await graphql(client, team).data(OVERVIEW) == expected


@pytest.mark.parametrize(
    ("team", "found"),
    [(TEAM_A, ["a-child", "a-root"]), (TEAM_B, ["b-grandchild", "b-child"])],
)
async def test_scope_narrows_rest(
    client: httpx.AsyncClient, team: dict[str, str], found: list[str]
) -> None:
    response = await client.get("/tasks-history", headers=team)
    assert response.status_code == 200
    assert [run["id"] for run in response.json()["data"]] == found
    other = await client.get(
        "/tasks-history", headers=team, params={"params": '{"team": "b"}'}
    )
    assert [run["id"] for run in other.json()["data"]] == [
        run_id for run_id in found if run_id.startswith("b-")
    ]
    missing = await client.get("/tasks-history/no-such-run", headers=team)
    for run_id in RUN_IDS:
        response = await client.get(f"/tasks-history/{run_id}", headers=team)
        if run_id in found:
            assert response.json()["id"] == run_id
        else:  # exactly as a run that does not exist
            assert (response.status_code, response.json()) == (
                missing.status_code,
                missing.json(),
            )
    assert missing.status_code == 404


COUNTS = "{ runs { countUpTo(limit: 100) approximateCount } }"


@pytest.mark.parametrize(
    ("team", "found"),
    [(TEAM_A, ["a-child", "a-root"]), (TEAM_B, ["b-grandchild", "b-child"])],
)
async def test_scope_narrows_counts_and_export(
    client: httpx.AsyncClient, team: dict[str, str], found: list[str]
) -> None:
    counts = (await graphql(client, team).data(COUNTS))["runs"]
    assert counts["countUpTo"] == len(found)
    # the planner's estimate of the scoped filter, not of the whole table
    unscoped = (await graphql(client, {}).data(COUNTS))["runs"]
    assert counts["approximateCount"] <= unscoped["approximateCount"]
    export = await client.get("/tasks-history/export", headers=team)
    assert export.status_code == 200
    lines = export.text.splitlines()
    assert [json.loads(line)["id"] for line in lines] == found


async def test_scope_refuses_with_the_http_exception_it_raises(
    client: httpx.AsyncClient,
) -> None:
    nobody = {"x-team": "nobody"}
    response = await client.get("/tasks-history", headers=nobody)
    assert (response.status_code, response.json()) == (403, {"detail": "Forbidden"})
    response = await client.post(
        "/tasks-graphql", json={"query": "{ taskNames { task } }"}, headers=nobody
    )
    assert (response.status_code, response.json()) == (403, {"detail": "Forbidden"})


async def test_scope_of_the_plugin_narrows_its_routes(
    database_url: str, fresh_table: str, scoped_app: FastAPI
) -> None:
    plugin = TaskHistoryPlugin(
        database_url,
        table_name=fresh_table,
        scope=lambda connection: RunFilter(task=["report"]),
    )
    app = FastAPI()
    plugin.register_routes(app)
    transport = httpx.ASGITransport(app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            rest = await c.get("/tasks-history")
            assert [run["id"] for run in rest.json()["data"]] == ["b-child"]
            assert (await c.get("/tasks-history/a-root")).status_code == 404
            assert await GraphQL(c).data(RUNS) == {"runs": page("b-child")}
    finally:
        await plugin.close()


UPDATES = """
subscription Updates($since: DateTime) {
  runUpdates(since: $since) { runId }
}
"""


async def test_scope_narrows_live_updates(scoped_app: FastAPI) -> None:
    """Replayed and live: each connection gets its team's runs only (this
    test writes runs, so it comes last)."""
    service: HistoryService = scoped_app.state.history_service
    since = "2000-01-01T00:00:00+00:00"
    async with (
        serving(scoped_app) as url,
        GraphQLWS.connect(url, headers=TEAM_A) as team_a,
        GraphQLWS.connect(url, headers=TEAM_B) as team_b,
    ):
        await team_a.subscribe(UPDATES, since=since)
        await team_b.subscribe(UPDATES, since=since)

        async def received(ws: GraphQLWS, count: int) -> list[str]:
            return [(await ws.next_data())["runUpdates"]["runId"] for _ in range(count)]

        assert sorted(await received(team_a, 2)) == ["a-child", "a-root"]
        assert sorted(await received(team_b, 2)) == ["b-child", "b-grandchild"]
        # the other team's change first: a leak would arrive before one's own
        await service.store.upsert([run_record("b-new", params={"team": "b"})])
        await service.store.upsert([run_record("a-new", params={"team": "a"})])
        assert await received(team_a, 1) == ["a-new"]
        assert await received(team_b, 1) == ["b-new"]
