"""Every field of TaskRunFilter and its combinators, against Python truth."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fluid.scheduler import TaskState

from gql_history import HistoryService, TaskHistoryPlugin
from gql_history.core.records import RunRecord
from tests.factories import T0, run_record
from tests.gql import GraphQL, codes

RUNS = """
query Runs($filter: TaskRunFilter) {
  runs(first: 100, filter: $filter) { edges { node { runId } } totalCount }
}
"""

TASKS = ("add", "report", "slow")
STATES = (TaskState.success, TaskState.failure, TaskState.aborted, TaskState.queued)
PRIORITIES = ("high", "medium", "low")
REGIONS = ("eu", "us")


def seed_records() -> list[RunRecord]:
    """36 runs, one a second, varied on every filtered column."""
    records = []
    for i in range(36):
        parent = f"run{i - 1:02d}" if i % 6 else ""
        records.append(
            run_record(
                f"run{i:02d}",
                name=TASKS[i % 3],
                state=STATES[i % 4],
                priority=PRIORITIES[i % 3],
                queued=T0 + timedelta(seconds=i),
                params={"n": i % 5, "region": REGIONS[i % 2], "nested": {"k": i % 3}},
                tags=["odd"] if i % 2 else ["even", "all"],
                from_run_id=parent,
                root_run_id=f"run{i - i % 6:02d}" if parent else "",
            )
        )
    return records


RECORDS = seed_records()


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    await history.store.upsert(RECORDS)
    return history


def matching(predicate: Callable[[RunRecord], bool]) -> set[str]:
    return {record.id for record in RECORDS if predicate(record)}


async def found(graphql: GraphQL, run_filter: Any) -> set[str]:
    """The ids the filter matches; checks totalCount agrees."""
    conn = (await graphql.data(RUNS, filter=run_filter))["runs"]
    ids = [edge["node"]["runId"] for edge in conn["edges"]]
    assert conn["totalCount"] == len(ids)
    return set(ids)


CASES: list[tuple[str, Any, Callable[[RunRecord], bool]]] = [
    ("no filter", None, lambda r: True),
    ("empty filter", {}, lambda r: True),
    ("task", {"task": ["add", "slow"]}, lambda r: r.name in ("add", "slow")),
    ("task empty list", {"task": []}, lambda r: False),
    ("state", {"state": ["FAILURE"]}, lambda r: r.state is TaskState.failure),
    (
        "states",
        {"state": ["ABORTED", "QUEUED"]},
        lambda r: r.state in (TaskState.aborted, TaskState.queued),
    ),
    ("state empty list", {"state": []}, lambda r: False),
    ("priority", {"priority": ["HIGH", "LOW"]}, lambda r: r.priority != "medium"),
    ("priority empty list", {"priority": []}, lambda r: False),
    (
        "queued after, inclusive",
        {"queuedAfter": (T0 + timedelta(seconds=30)).isoformat()},
        lambda r: r.queued >= T0 + timedelta(seconds=30),
    ),
    (
        "queued before, inclusive",
        {"queuedBefore": (T0 + timedelta(seconds=3)).isoformat()},
        lambda r: r.queued <= T0 + timedelta(seconds=3),
    ),
    (
        "queued between, in another time zone",
        {
            "queuedAfter": "2026-01-01T02:00:10+02:00",
            "queuedBefore": "2025-12-31T19:00:12-05:00",
        },
        lambda r: T0 + timedelta(seconds=10) <= r.queued <= T0 + timedelta(seconds=12),
    ),
    ("params", {"params": {"region": "eu"}}, lambda r: r.params["region"] == "eu"),
    (
        "params of several keys",
        {"params": {"region": "us", "n": 3}},
        lambda r: r.params["region"] == "us" and r.params["n"] == 3,
    ),
    (
        "params nested",
        {"params": {"nested": {"k": 2}}},
        lambda r: r.params["nested"]["k"] == 2,
    ),
    ("params empty object", {"params": {}}, lambda r: True),
    ("tags", {"tags": ["all"]}, lambda r: "all" in r.tags),
    ("tags any of", {"tags": ["odd", "even"]}, lambda r: True),
    ("tags empty list", {"tags": []}, lambda r: False),
    ("parent run id", {"parentRunId": "run07"}, lambda r: r.from_run_id == "run07"),
    ("root run id", {"rootRunId": "run12"}, lambda r: r.root_run_id == "run12"),
    (
        "fields together",
        {"task": ["report"], "state": ["SUCCESS", "FAILURE"]},
        lambda r: (
            r.name == "report" and r.state in (TaskState.success, TaskState.failure)
        ),
    ),
    ("and of none", {"and": []}, lambda r: True),
    ("or of none", {"or": []}, lambda r: False),
    ("not of nothing", {"not": {}}, lambda r: False),
    (
        "and",
        {"and": [{"task": ["add"]}, {"params": {"region": "eu"}}]},
        lambda r: r.name == "add" and r.params["region"] == "eu",
    ),
    (
        "or",
        {"or": [{"task": ["add"]}, {"state": ["FAILURE"]}]},
        lambda r: r.name == "add" or r.state is TaskState.failure,
    ),
    ("not", {"not": {"task": ["add"]}}, lambda r: r.name != "add"),
    (
        "or with an empty branch",
        {"or": [{"task": []}, {"priority": ["HIGH"]}]},
        lambda r: r.priority == "high",
    ),
    (
        "nested combinators",
        {
            "tags": ["even"],
            "or": [
                {"and": [{"task": ["add"]}, {"not": {"state": ["SUCCESS"]}}]},
                {"not": {"or": [{"task": ["add"]}, {"params": {"n": 0}}]}},
            ],
        },
        lambda r: (
            "even" in r.tags
            and (
                (r.name == "add" and r.state is not TaskState.success)
                or not (r.name == "add" or r.params["n"] == 0)
            )
        ),
    ),
]


@pytest.mark.parametrize(
    ("run_filter", "predicate"),
    [(f, p) for _, f, p in CASES],
    ids=[name for name, _, _ in CASES],
)
async def test_runs_filter_matches_the_runs_it_describes(
    graphql: GraphQL,
    seeded: TaskHistoryPlugin,
    run_filter: Any,
    predicate: Callable[[RunRecord], bool],
) -> None:
    assert await found(graphql, run_filter) == matching(predicate)


async def test_runs_filter_nested_up_to_the_limit_is_accepted(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    run_filter: dict[str, Any] = {"task": ["add"]}
    for _ in range(4):  # depth 5
        run_filter = {"and": [run_filter]}
    assert await found(graphql, run_filter) == matching(lambda r: r.name == "add")


async def test_runs_filter_nested_past_the_limit_is_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    run_filter: dict[str, Any] = {"task": ["add"]}
    for _ in range(5):  # depth 6
        run_filter = {"or": [run_filter]}
    errors = await graphql.errors(RUNS, filter=run_filter)
    assert [(e["message"], e["extensions"]) for e in errors] == [
        (
            "the filter nests `and`/`or`/`not` more than 5 levels deep: flatten it",
            {"code": "BAD_USER_INPUT"},
        )
    ]


@pytest.mark.parametrize(
    ("params", "kind"), [("region", "a string"), (["eu"], "a list"), (3, "a scalar")]
)
async def test_runs_filter_params_not_an_object_is_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin, params: Any, kind: str
) -> None:
    errors = await graphql.errors(RUNS, filter={"params": params})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert errors[0]["message"] == (
        f'`params` must be a JSON object, e.g. {{"user": "u1"}}, not {kind}'
    )


async def test_runs_filter_params_literal_object_is_accepted(
    graphql: GraphQL, seeded: TaskHistoryPlugin
) -> None:
    query = (
        '{ runs(first: 100, filter: {params: {region: "us", n: 1}}) { totalCount } }'
    )
    expected = matching(lambda r: r.params["region"] == "us" and r.params["n"] == 1)
    assert (await graphql.data(query))["runs"]["totalCount"] == len(expected)


@pytest.mark.parametrize(
    ("run_filter", "message"),
    [
        (
            {"state": ["DONE"]},
            "Variable '$filter' has invalid value at .state[0]: "
            "Value 'DONE' does not exist in 'TaskState' enum.",
        ),
        (
            {"priority": ["high"]},
            "Variable '$filter' has invalid value at .priority[0]: "
            "Value 'high' does not exist in 'TaskPriority' enum. "
            "Did you mean the enum value 'HIGH'?",
        ),
        (
            {"queuedAfter": "yesterday"},
            "Variable '$filter' has invalid value at .queuedAfter: "
            'Value cannot represent a DateTime: "yesterday". '
            "Expected 4 digits, got 'yest'",
        ),
    ],
)
async def test_runs_filter_values_of_the_wrong_kind_are_bad_user_input(
    graphql: GraphQL, seeded: TaskHistoryPlugin, run_filter: Any, message: str
) -> None:
    errors = await graphql.errors(RUNS, filter=run_filter)
    assert [(e["message"], e["extensions"]) for e in errors] == [
        (message, {"code": "BAD_USER_INPUT"})
    ]
