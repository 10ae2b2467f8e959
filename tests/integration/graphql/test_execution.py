"""The bulk execution context answers exactly as graphql-core's own."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

import pytest
from fluid.scheduler import TaskState
from graphql import GraphQLError, GraphQLFloat, GraphQLID, GraphQLInt, GraphQLScalarType

from gql_history import HistoryService, TaskHistoryPlugin
from gql_history.graphql.context import HistoryContext
from gql_history.graphql.errors import ErrorCodes
from gql_history.graphql.execution import (
    MAX_CACHED_DOCUMENT,
    BulkExecutionContext,
    _serializer,
)
from gql_history.graphql.query import Query
from gql_history.graphql.schema import HistorySchema
from gql_history.schema import schema
from tests.factories import T0, run_record

QUERIES = [
    """{ runs(first: 10) { edges { cursor node { id runId task priority state
         queued start end duration params retryAttempt tags
         error { type message } } }
         pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }""",
    """{ runs(last: 3, orderBy: QUEUED_ASC) { edges { node { __typename runId
         parent { runId } root { runId state } } } totalCount } }""",
    """{ a: run(id: "child") { runId parent { runId children(first: 5) {
         edges { node { runId } } } } } b: run(id: "missing") { runId } }""",
    """{ runs(first: 2, filter: {state: [FAILURE]}) { edges { node {
         runId error { type message } params } } } }""",
    """{ runs(first: 101) { edges { node { runId } } } }""",
    """{ runs(first: 3) { edges { e: node { a: runId b: runId state s: state
         __typename error { t: type } } } } }""",
]


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    await history.store.upsert(
        [
            run_record(
                "root",
                state=TaskState.success,
                start=T0,
                end=T0 + timedelta(seconds=2),
                params={"user": "u1", "nested": {"n": [1, 2]}},
                tags=["a", "b"],
            ),
            run_record("child", from_run_id="root", root_run_id="root", queued=T0),
            run_record(
                "failed",
                state=TaskState.failure,
                queued=T0 - timedelta(seconds=1),
                error_type="ValueError",
                error_message="boom",
            ),
        ]
    )
    return history


@pytest.mark.parametrize("query", QUERIES)
async def test_execution_bulk_context_matches_graphql_core(
    seeded: TaskHistoryPlugin, query: str
) -> None:
    plain = HistorySchema(query=Query, extensions=[ErrorCodes])
    bulk = await schema.execute(query, context_value=HistoryContext(seeded))
    core = await plain.execute(query, context_value=HistoryContext(seeded))
    assert (bulk.data, _messages(bulk.errors)) == (core.data, _messages(core.errors))
    assert bulk.data or bulk.errors


def _messages(errors: object) -> list[str]:
    return [str(error) for error in errors or ()]


@pytest.mark.parametrize(
    "query",
    [
        """query ($full: Boolean!) { runs(first: 1) { edges { node {
           runId task @include(if: $full) } } } }""",
        """query ($full: Boolean!) { runs(first: 1) { edges { node { ...Run } } } }
           fragment Run on TaskRun { runId task @include(if: $full) }""",
    ],
)
async def test_execution_bulk_context_plans_directives_per_request(
    seeded: TaskHistoryPlugin, query: str
) -> None:
    """A plan shared across requests would answer one request's ``@include``
    with another's fields."""
    answers = [
        await schema.execute(
            query, variable_values={"full": full}, context_value=HistoryContext(seeded)
        )
        for full in (True, False, True)
    ]
    nodes = [
        answer.data["runs"]["edges"][0]["node"] for answer in answers if answer.data
    ]
    assert [sorted(node) for node in nodes] == [
        ["runId", "task"],
        ["runId"],
        ["runId", "task"],
    ]


@pytest.mark.parametrize("kind", [GraphQLInt, GraphQLFloat, GraphQLID])
@pytest.mark.parametrize(
    "value", [0, -7, 2**31 - 1, 2**31, -(2**31) - 1, True, 1.5, 2.0, "3", math.nan]
)
def test_execution_serializer_matches_graphql_core(
    kind: GraphQLScalarType, value: object
) -> None:
    def outcome(serialize: Callable[[object], object]) -> object:
        try:
            result = serialize(value)
        except GraphQLError as error:
            return error.message
        return (type(result), result)

    assert outcome(_serializer(kind)) == outcome(kind.serialize)


async def test_execution_large_documents_are_not_kept(seeded: HistoryService) -> None:
    """A document over ``MAX_CACHED_DOCUMENT`` leaves no plan behind: a plan
    holds its document's text, and 2,048 of 1 MB documents would be 2 GB."""
    BulkExecutionContext._shared_plans.clear()
    small = '{ run(id: "child") { runId task } }'
    padded = '{ run(id: "child") { runId task } }' + " " * MAX_CACHED_DOCUMENT
    for query in (padded, small):
        result = await schema.execute(query, context_value=HistoryContext(seeded))
        assert result.data == {"run": {"runId": "child", "task": "add"}}
        kept = [
            nodes[0].loc.source.body
            for (_, nodes), _ in BulkExecutionContext._shared_plans.values()
            if nodes and nodes[0].loc is not None
        ]
        assert padded not in kept
    assert kept and set(kept) == {small}
