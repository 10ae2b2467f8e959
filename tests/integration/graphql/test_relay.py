"""Relay cursor connections: whole walks over tie-heavy runs against SQL truth."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from fluid.scheduler import TaskState
from sqlalchemy import text

from gql_history import HistoryService, TaskHistoryPlugin
from gql_history.core.records import RunRecord
from tests.factories import T0, run_record
from tests.gql import GraphQL, codes

PAGE = """
query Page($first: Int, $after: String, $last: Int, $before: String,
           $orderBy: TaskRunOrder, $filter: TaskRunFilter) {
  runs(first: $first, after: $after, last: $last, before: $before,
       orderBy: $orderBy, filter: $filter) {
    edges { cursor node { runId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    totalCount
  }
}
"""

TASKS = ("add", "report", "slow", "fan_out")
STATES = (TaskState.success, TaskState.failure, TaskState.queued, TaskState.running)


def seed_records() -> list[RunRecord]:
    """600 runs: 300 on one timestamp, the rest in ties of 2 to 4.

    Ids are hashes, so their order has nothing to do with insertion order.
    """
    queued = [T0] * 300
    queued += [T0 + timedelta(seconds=1 + i // 4) for i in range(200)]
    queued += [T0 - timedelta(seconds=1 + i // 3) for i in range(100)]
    return [
        run_record(
            hashlib.md5(str(i).encode()).hexdigest()[:12],
            name=TASKS[i % 4],
            state=STATES[i % 4],
            queued=when,
            params={"n": i % 7},
        )
        for i, when in enumerate(queued)
    ]


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    await history.store.upsert(seed_records())
    return history


async def truth(history: HistoryService, order: str, where: str = "true") -> list[str]:
    """Run ids straight from SQL, in the keyset order of ``order``."""
    direction = "DESC" if order == "QUEUED_DESC" else "ASC"
    sql = (
        f'SELECT id FROM "{history.store.table.name}" WHERE {where} '
        f"ORDER BY queued {direction}, id {direction}"
    )
    async with history.store.engine.connect() as conn:
        return list((await conn.execute(text(sql))).scalars())


async def walk_forward(graphql: GraphQL, size: int, **args: Any) -> list[str]:
    """Every run, page by page with first/after; checks each page's info."""
    seen: list[str] = []
    after = None
    while True:
        conn = (await graphql.data(PAGE, first=size, after=after, **args))["runs"]
        ids = [edge["node"]["runId"] for edge in conn["edges"]]
        info = conn["pageInfo"]
        assert_cursors(conn)
        assert info["hasPreviousPage"] is (after is not None)
        seen += ids
        if not info["hasNextPage"]:
            assert len(ids) <= size
            return seen
        assert len(ids) == size
        after = info["endCursor"]


async def walk_backward(graphql: GraphQL, size: int, **args: Any) -> list[str]:
    """Every run, page by page with last/before, returned in order."""
    seen: list[str] = []
    before = None
    while True:
        conn = (await graphql.data(PAGE, last=size, before=before, **args))["runs"]
        ids = [edge["node"]["runId"] for edge in conn["edges"]]
        info = conn["pageInfo"]
        assert_cursors(conn)
        assert info["hasNextPage"] is (before is not None)
        seen = ids + seen
        if not info["hasPreviousPage"]:
            assert len(ids) <= size
            return seen
        assert len(ids) == size
        before = info["startCursor"]


def assert_cursors(conn: dict[str, Any]) -> None:
    cursors = [edge["cursor"] for edge in conn["edges"]]
    info = conn["pageInfo"]
    assert (info["startCursor"], info["endCursor"]) == (
        (cursors[0], cursors[-1]) if cursors else (None, None)
    )


@pytest.mark.parametrize(
    ("order", "size"),
    [("QUEUED_DESC", 7), ("QUEUED_ASC", 7), ("QUEUED_DESC", 100), ("QUEUED_ASC", 64)],
)
async def test_runs_walk_forward_returns_each_run_once_in_order(
    graphql: GraphQL, seeded: TaskHistoryPlugin, order: str, size: int
) -> None:
    assert await walk_forward(graphql, size, orderBy=order) == await truth(
        seeded, order
    )


@pytest.mark.parametrize(
    ("order", "size"),
    [("QUEUED_DESC", 7), ("QUEUED_ASC", 7), ("QUEUED_DESC", 100), ("QUEUED_ASC", 64)],
)
async def test_runs_walk_backward_returns_each_run_once_in_order(
    graphql: GraphQL, seeded: TaskHistoryPlugin, order: str, size: int
) -> None:
    assert await walk_backward(graphql, size, orderBy=order) == await truth(
        seeded, order
    )


async def test_runs_walk_a_filtered_set_both_ways(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    run_filter = {"task": ["report", "fan_out"], "state": ["FAILURE", "SUCCESS"]}
    expected = await truth(
        seeded,
        "QUEUED_DESC",
        "name IN ('report', 'fan_out') AND state IN ('failure', 'success')",
    )
    assert len(expected) == 150
    assert await walk_forward(graphql, 40, filter=run_filter) == expected
    assert await walk_backward(graphql, 40, filter=run_filter) == expected


async def test_runs_total_count_is_the_filtered_set_whatever_the_cursor(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    first = (await graphql.data(PAGE, first=3, filter={"task": ["add"]}))["runs"]
    after = first["pageInfo"]["endCursor"]
    rest = await graphql.data(PAGE, first=3, after=after, filter={"task": ["add"]})
    assert (first["totalCount"], rest["runs"]["totalCount"]) == (150, 150)


async def test_runs_default_page_holds_fifty_runs(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    conn = (await graphql.data(PAGE))["runs"]
    ids = [edge["node"]["runId"] for edge in conn["edges"]]
    assert ids == (await truth(seeded, "QUEUED_DESC"))[:50]
    assert conn["pageInfo"]["hasNextPage"] is True


async def test_runs_default_page_before_a_cursor_reads_backward(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    everything = (await graphql.data(PAGE, first=100))["runs"]["edges"]
    conn = (await graphql.data(PAGE, before=everything[80]["cursor"]))["runs"]
    assert [edge["node"]["runId"] for edge in conn["edges"]] == [
        edge["node"]["runId"] for edge in everything[30:80]
    ]


async def test_runs_first_zero_returns_no_edges(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    conn = (await graphql.data(PAGE, first=0))["runs"]
    assert conn == {
        "edges": [],
        "pageInfo": {
            "hasNextPage": True,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
        "totalCount": 600,
    }


async def test_runs_of_an_empty_set_is_an_empty_page(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    empty = {
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
        "totalCount": 0,
    }
    assert (await graphql.data(PAGE, first=10, filter={"task": []}))["runs"] == empty
    assert (await graphql.data(PAGE, last=10, filter={"task": ["nope"]}))[
        "runs"
    ] == empty


async def test_runs_after_the_last_cursor_is_empty_with_a_page_before(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    last = (await graphql.data(PAGE, last=1))["runs"]
    conn = await graphql.data(PAGE, first=5, after=last["pageInfo"]["endCursor"])
    assert conn["runs"]["edges"] == []
    assert conn["runs"]["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }


async def test_runs_before_the_first_cursor_is_empty_with_a_page_after(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    first = (await graphql.data(PAGE, first=1))["runs"]
    conn = await graphql.data(PAGE, last=5, before=first["pageInfo"]["startCursor"])
    assert conn["runs"]["edges"] == []
    assert conn["runs"]["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


async def test_runs_last_without_before_ends_the_order(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    conn = (await graphql.data(PAGE, last=3, orderBy="QUEUED_ASC"))["runs"]
    ids = [edge["node"]["runId"] for edge in conn["edges"]]
    assert ids == (await truth(seeded, "QUEUED_ASC"))[-3:]
    assert conn["pageInfo"]["hasNextPage"] is False
    assert conn["pageInfo"]["hasPreviousPage"] is True


async def test_runs_cursor_of_a_removed_run_still_pages(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    """A cursor holds a keyset position, not a row: it outlives its run."""
    edges = (await graphql.data(PAGE, first=3, orderBy="QUEUED_ASC"))["runs"]["edges"]
    gone = edges[1]["node"]["runId"]
    async with seeded.store.engine.begin() as conn:
        await conn.execute(
            text(f'DELETE FROM "{seeded.store.table.name}" WHERE id = :id'),
            {"id": gone},
        )
    try:
        page = await graphql.data(
            PAGE, first=1, after=edges[1]["cursor"], orderBy="QUEUED_ASC"
        )
        assert [e["node"]["runId"] for e in page["runs"]["edges"]] == [
            edges[2]["node"]["runId"]
        ]
        assert page["runs"]["pageInfo"]["hasPreviousPage"] is True
    finally:
        await seeded.store.upsert([r for r in seed_records() if r.id == gone])


async def test_runs_cursor_from_another_order_is_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    cursor = (await graphql.data(PAGE, first=1))["runs"]["pageInfo"]["endCursor"]
    errors = await graphql.errors(PAGE, first=1, after=cursor, orderBy="QUEUED_ASC")
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert errors[0]["message"] == (
        "this cursor belongs to the QUEUED_DESC order, not QUEUED_ASC"
    )
