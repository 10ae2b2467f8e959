"""run, node and nodes, every TaskRun field, and the lineage fields."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import pytest
from fluid.scheduler import TaskState
from sqlalchemy import text

from gql_history import HistoryService, TaskHistoryPlugin
from tests.factories import T0, run_record
from tests.gql import GraphQL, codes

RUN_FIELDS = """
    id runId task priority state queued start end duration params retryAttempt
    error { type message } tags parentRunId rootRunId
"""
RUN = "query Run($id: String!) { run(id: $id) {" + RUN_FIELDS + "} }"
NODE = "query Node($id: ID!) { node(id: $id) { id ... on TaskRun { runId } } }"
NODES = "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { id ... on TaskRun { runId } } }"
LINEAGE = """
query Lineage($id: String!) {
  run(id: $id) { parent { runId } root { runId } }
}
"""
CHILDREN = """
query Children($id: String!, $first: Int, $after: String, $last: Int, $before: String) {
  run(id: $id) {
    children(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { runId } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      totalCount
    }
  }
}
"""


def global_id(run_id: str) -> str:
    return base64.b64encode(f"TaskRun:{run_id}".encode()).decode()


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    """A chain: root -> c0..c4 (c3 and c4 on one timestamp) -> g0, g1 under c0;
    an orphan whose parent is not recorded; a failed run; a legacy row."""

    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    records = [
        run_record(
            "root",
            name="fan_out",
            state=TaskState.success,
            priority="high",
            queued=T0,
            start=at(seconds=1),
            end=at(seconds=3.5),
            params={"children": 5},
            tags=["pipeline"],
        ),
        *(
            run_record(
                f"c{i}",
                queued=at(seconds=10 + min(i, 3)),
                params={"a": i},
                from_run_id="root",
                root_run_id="root",
            )
            for i in range(5)
        ),
        *(
            run_record(
                f"g{i}", queued=at(seconds=20 + i), from_run_id="c0", root_run_id="root"
            )
            for i in range(2)
        ),
        run_record("orphan", from_run_id="gone", root_run_id="gone"),
        run_record(
            "failed",
            name="report",
            state=TaskState.failure,
            priority="low",
            queued=at(seconds=30),
            start=at(seconds=31),
            retry_attempt=2,
            error_type="ValueError",
            error_message="report for u9 has no data",
            tags=["reports", "billing"],
        ),
        run_record("legacy", queued=at(seconds=40)),
    ]
    await history.store.upsert(records)
    async with history.store.engine.begin() as conn:
        await conn.execute(
            text(
                f'UPDATE "{history.store.table.name}" SET params = NULL, tags = NULL, '
                "retry_attempt = NULL, from_run_id = NULL, root_run_id = NULL "
                "WHERE id = 'legacy'"
            )
        )
    return history


async def test_run_returns_every_field(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    assert (await graphql.data(RUN, id="root"))["run"] == {
        "id": global_id("root"),
        "runId": "root",
        "task": "fan_out",
        "priority": "HIGH",
        "state": "SUCCESS",
        "queued": "2026-01-01T00:00:00+00:00",
        "start": "2026-01-01T00:00:01+00:00",
        "end": "2026-01-01T00:00:03.500000+00:00",
        "duration": 2.5,
        "params": {"children": 5},
        "retryAttempt": 0,
        "error": None,
        "tags": ["pipeline"],
        "parentRunId": None,
        "rootRunId": None,
    }


async def test_run_of_a_failure_has_its_error_and_no_duration_until_it_ends(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    run = (await graphql.data(RUN, id="failed"))["run"]
    assert (run["state"], run["priority"], run["duration"], run["retryAttempt"]) == (
        "FAILURE",
        "LOW",
        None,
        2,
    )
    assert run["error"] == {
        "type": "ValueError",
        "message": "report for u9 has no data",
    }
    assert run["tags"] == ["reports", "billing"]


async def test_run_of_a_legacy_row_fills_what_it_lacks(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    run = (await graphql.data(RUN, id="legacy"))["run"]
    assert {k: run[k] for k in ("params", "tags", "retryAttempt", "parentRunId")} == {
        "params": {},
        "tags": [],
        "retryAttempt": None,
        "parentRunId": None,
    }


async def test_run_of_an_unknown_id_is_null(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    assert await graphql.data(RUN, id="nope") == {"run": None}


async def test_node_resolves_a_run_by_global_id(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    assert await graphql.data(NODE, id=global_id("c1")) == {
        "node": {"id": global_id("c1"), "runId": "c1"}
    }


async def test_node_of_an_unknown_run_is_null(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    assert await graphql.data(NODE, id=global_id("nope")) == {"node": None}


@pytest.mark.parametrize(
    "bad", ["not-an-id", "", base64.b64encode(b"TaskRun").decode()]
)
async def test_node_malformed_global_id_is_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin, bad: str
) -> None:
    errors = await graphql.errors(NODE, id=bad)
    assert codes(errors) == ["BAD_USER_INPUT"]


async def test_node_malformed_global_id_literal_is_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    errors = await graphql.errors('{ node(id: "garbage") { id } }')
    assert [(e["message"], e["extensions"]) for e in errors] == [
        ('Value cannot represent a GlobalID: "garbage".', {"code": "BAD_USER_INPUT"})
    ]


async def test_node_global_id_of_another_type_is_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    other = base64.b64encode(b"User:root").decode()
    errors = await graphql.errors(NODE, id=other)
    assert [(e["message"], e["extensions"]) for e in errors] == [
        (
            "no object type 'User': global ids here are TaskRun ids",
            {"code": "BAD_USER_INPUT"},
        )
    ]


async def test_nodes_resolve_in_order_with_null_for_unknown_runs(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    ids = [global_id("g1"), global_id("nope"), global_id("root"), global_id("g1")]
    assert await graphql.data(NODES, ids=ids) == {
        "nodes": [
            {"id": global_id("g1"), "runId": "g1"},
            None,
            {"id": global_id("root"), "runId": "root"},
            {"id": global_id("g1"), "runId": "g1"},
        ]
    }


async def test_nodes_of_no_ids_is_empty(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    assert await graphql.data(NODES, ids=[]) == {"nodes": []}


async def test_nodes_past_the_page_size_limit_is_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    errors = await graphql.errors(NODES, ids=[global_id(f"r{i}") for i in range(101)])
    assert [(e["message"], e["extensions"]) for e in errors] == [
        ("`ids` may hold at most 100 ids, not 101", {"code": "BAD_USER_INPUT"})
    ]


@pytest.mark.parametrize(
    ("run_id", "lineage"),
    [
        ("root", {"parent": None, "root": None}),
        ("c2", {"parent": {"runId": "root"}, "root": {"runId": "root"}}),
        ("g1", {"parent": {"runId": "c0"}, "root": {"runId": "root"}}),
        ("orphan", {"parent": None, "root": None}),
        ("legacy", {"parent": None, "root": None}),
    ],
)
async def test_run_parent_and_root_follow_the_lineage(
    graphql: GraphQL, seeded: TaskHistoryPlugin, run_id: str, lineage: dict[str, Any]
) -> None:
    assert (await graphql.data(LINEAGE, id=run_id))["run"] == lineage


async def test_run_children_come_earliest_queued_first(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    conn = (await graphql.data(CHILDREN, id="root"))["run"]["children"]
    assert [edge["node"]["runId"] for edge in conn["edges"]] == [
        "c0",
        "c1",
        "c2",
        "c3",
        "c4",
    ]
    assert conn["totalCount"] == 5
    assert conn["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": conn["edges"][0]["cursor"],
        "endCursor": conn["edges"][-1]["cursor"],
    }


async def test_run_children_page_forward_and_backward(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    first = (await graphql.data(CHILDREN, id="root", first=2))["run"]["children"]
    assert [e["node"]["runId"] for e in first["edges"]] == ["c0", "c1"]
    assert (first["pageInfo"]["hasNextPage"], first["pageInfo"]["hasPreviousPage"]) == (
        True,
        False,
    )
    after = first["pageInfo"]["endCursor"]
    rest = (await graphql.data(CHILDREN, id="root", first=5, after=after))["run"]
    assert [e["node"]["runId"] for e in rest["children"]["edges"]] == ["c2", "c3", "c4"]
    assert rest["children"]["pageInfo"]["hasPreviousPage"] is True
    assert rest["children"]["totalCount"] == 5
    before = rest["children"]["edges"][-1]["cursor"]
    back = (await graphql.data(CHILDREN, id="root", last=2, before=before))["run"]
    assert [e["node"]["runId"] for e in back["children"]["edges"]] == ["c2", "c3"]
    assert (
        back["children"]["pageInfo"]["hasNextPage"],
        back["children"]["pageInfo"]["hasPreviousPage"],
    ) == (True, True)


async def test_run_children_of_a_run_without_any_is_empty(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    assert (await graphql.data(CHILDREN, id="g0"))["run"]["children"] == {
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
        "totalCount": 0,
    }


async def test_run_lineage_nests(graphql: GraphQL, seeded: TaskHistoryPlugin) -> None:
    query = """{ run(id: "g0") { parent { children(first: 1) { edges { node {
        runId children { totalCount edges { node { runId root { runId } } } }
    } } } } } }"""
    edges = (await graphql.data(query))["run"]["parent"]["children"]["edges"]
    assert edges == [
        {
            "node": {
                "runId": "g0",
                "children": {"totalCount": 0, "edges": []},
            }
        }
    ]
    query = '{ run(id: "root") { children(first: 1) { edges { node { children {'
    query += " edges { node { runId root { runId } } } } } } } } }"
    edges = (await graphql.data(query))["run"]["children"]["edges"]
    assert edges[0]["node"]["children"]["edges"] == [
        {"node": {"runId": "g0", "root": {"runId": "root"}}},
        {"node": {"runId": "g1", "root": {"runId": "root"}}},
    ]
