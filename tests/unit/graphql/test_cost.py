from __future__ import annotations

from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from gql_history.graphql.cost import count_values, operation_cost


def cost(document: str, **variables: Any) -> int:
    parsed = parse(document)
    [operation] = [
        d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)
    ]
    fragments = {
        d.name.value: d
        for d in parsed.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    return operation_cost(
        operation.selection_set, fragments, variables, max_page_size=100
    )


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{ tasks { name } }", 0),
        ('{ run(id: "a") { runId parent { runId } } }', 2),
        ("{ runs { totalCount } }", 50),  # the default page
        ("{ runs(first: 100) { edges { node { runId } } } }", 100),
        (
            "{ runs(first: 100) { edges { node { children(first: 20) { "
            "edges { node { runId } } } } } } }",
            100 + 100 * 20,
        ),
        (
            "{ runs(first: 100) { edges { node { children(first: 100) { edges "
            "{ node { children(first: 100) { totalCount } } } } } } } }",
            100 + 100 * 100 + 100 * 100 * 100,
        ),
        ('{ nodes(ids: ["a", "b", "c"]) { id } }', 3),
        ("{ a: runs(last: 10) { totalCount } b: runs(first: 5) { totalCount } }", 15),
        ("{ runs(first: 5000) { totalCount } }", 100),  # refused by the resolver
        (
            "{ runs(first: 10) { ...F } } fragment F on TaskRunConnection { "
            "edges { node { ... on TaskRun { children(first: 10) { totalCount } "
            "} } } }",
            10 + 100,
        ),
    ],
)
def test_cost_multiplies_page_sizes_along_each_path(
    document: str, expected: int
) -> None:
    assert cost(document) == expected


def test_cost_reads_page_sizes_from_variables() -> None:
    document = """query($a: Int, $b: Int) {
        runs(first: $a) { edges { node { children(first: $b) { totalCount } } } }
    }"""
    assert cost(document, a=10, b=30) == 10 + 300
    assert cost(document) == 50 + 50 * 50


def test_cost_count_values_stops_past_the_most() -> None:
    assert count_values({"a": [1, 2, {"b": None}]}, 100) == 6
    assert count_values(list(range(1_000_000)), 10) == 11
