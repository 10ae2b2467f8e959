"""Cheap counts: ``countUpTo`` against SQL truth, ``approximateCount``
against the planner's own estimate of the same filter."""

from __future__ import annotations

import json

import pytest
from fluid.scheduler import TaskState
from sqlalchemy import text

from gql_history import HistoryService
from tests.factories import T0, run_record
from tests.gql import GraphQL, codes

COUNTS = """query($f: TaskRunFilter, $n: Int!) {
  runs(filter: $f) { totalCount approximateCount countUpTo(limit: $n) }
}"""


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    states = (TaskState.success, TaskState.failure, TaskState.queued)
    await history.store.upsert(
        [
            run_record(f"c{i:04d}", name=("a", "b")[i % 2], state=states[i % 3])
            for i in range(900)
        ]
    )
    async with history.store.engine.begin() as conn:
        await conn.execute(text(f'ANALYZE "{history.store.table.name}"'))
    return history


async def sql_count(history: HistoryService, where: str) -> int:
    sql = f'SELECT count(*) FROM "{history.store.table.name}" WHERE {where}'
    async with history.store.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def planner_rows(history: HistoryService, where: str) -> int:
    sql = (
        f'EXPLAIN (FORMAT JSON) SELECT 1 FROM "{history.store.table.name}" '
        f"WHERE {where}"
    )
    async with history.store.engine.connect() as conn:
        plan = (await conn.execute(text(sql))).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


@pytest.mark.parametrize(
    ("run_filter", "where"),
    [
        (None, "true"),
        ({"task": ["a"]}, "name = 'a'"),
        ({"state": ["FAILURE"], "task": ["b"]}, "state = 'failure' AND name = 'b'"),
        ({"task": ["nope"]}, "name = 'nope'"),
    ],
)
@pytest.mark.parametrize("limit", [0, 1, 100, 450, 10_000])
async def test_runs_count_up_to_stops_at_the_limit(
    graphql: GraphQL,
    seeded: HistoryService,
    run_filter: dict[str, object] | None,
    where: str,
    limit: int,
) -> None:
    exact = await sql_count(seeded, where)
    runs = (await graphql.data(COUNTS, f=run_filter, n=limit))["runs"]
    assert runs["totalCount"] == exact
    assert runs["countUpTo"] == min(exact, limit)


@pytest.mark.parametrize(
    ("run_filter", "where"),
    [
        (None, "true"),
        ({"task": ["a"]}, "name = 'a'"),
        ({"state": ["FAILURE"]}, "state = 'failure'"),
    ],
)
async def test_runs_approximate_count_is_the_planners_estimate(
    graphql: GraphQL,
    seeded: HistoryService,
    run_filter: dict[str, object] | None,
    where: str,
) -> None:
    runs = (await graphql.data(COUNTS, f=run_filter, n=1))["runs"]
    assert runs["approximateCount"] == await planner_rows(seeded, where)
    # analyzed, the estimate is close to the truth
    assert abs(runs["approximateCount"] - runs["totalCount"]) <= runs["totalCount"] / 5


async def test_children_count_up_to_counts_a_runs_children(
    graphql: GraphQL, seeded: HistoryService
) -> None:
    await seeded.store.upsert(
        [run_record(f"k{i}", from_run_id="c0000", queued=T0) for i in range(5)]
    )
    query = """query { run(id: "c0000") {
      children { totalCount countUpTo(limit: 3) approximateCount }
    } }"""
    children = (await graphql.data(query))["run"]["children"]
    assert (children["totalCount"], children["countUpTo"]) == (5, 3)
    assert children["approximateCount"] >= 0


@pytest.mark.parametrize("limit", [-1, 100_001])
async def test_runs_count_up_to_outside_its_range_is_bad_user_input(
    graphql: GraphQL, seeded: HistoryService, limit: int
) -> None:
    errors = await graphql.errors(COUNTS, n=limit)
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert errors[0]["message"] == (
        f"`limit` must be between 0 and 100000, not {limit}"
    )
