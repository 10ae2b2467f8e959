"""GraphQL reads compiled to one SQL statement answer exactly as Strawberry's
execution does: random operations over tie-heavy runs, through both paths,
compared whole (key order included)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import graphql
import httpx
import pytest
from fastapi import FastAPI
from fluid.scheduler import TaskState
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes, queries
from starlette.requests import HTTPConnection

from gql_history import HistoryService, create_app
from gql_history.core.filters import RunFilter
from gql_history.core.tasks import LiveTasks
from gql_history.graphql.schema import build_schema
from tests.factories import T0, run_record

TASKS = ("add", "report", "slow", "fan_out")
STATES = tuple(TaskState)
PRIORITIES = ("high", "medium", "low")
PARAMS: tuple[dict[str, Any], ...] = (
    {},
    {"n": 1},
    {"big": 2**70, "neg": -(2**63) - 1, "f": 1.5, "tiny": 1e-7, "whole": 2.0},
    {"u": 'é☃ \u2028 "q" \\', "nested": {"a": [1, None, {"b": [True, False]}]}},
    {"e": 1e300, "z": 0.1, "list": [[], {}, ""]},
)


@dataclass(frozen=True)
class _Task:
    tags: tuple[str, ...]


def seed() -> list[Any]:
    """90 runs: ties of up to 9 on every key, lineage chains, every kind of
    value (nulls, whole and fractional durations, microsecond times)."""
    runs = []
    for i in range(90):
        queued = T0 + timedelta(seconds=i // 9)
        start = None if i % 7 == 0 else queued + timedelta(seconds=i % 3)
        end = None
        if start is not None and i % 5:
            end = start + timedelta(seconds=i % 4, microseconds=(i % 3) * 250_001)
        runs.append(
            run_record(
                f"run-{i:03d}" if i % 11 else f"rún-{i:03d}",
                name=TASKS[i % 4],
                state=STATES[i % len(STATES)],
                priority=PRIORITIES[i % 3],
                queued=queued,
                start=start,
                end=end,
                params=PARAMS[i % len(PARAMS)],
                from_run_id="" if i < 3 else f"run-{i % 3:03d}",
                root_run_id="" if i < 3 else "run-001",
                retry_attempt=i % 2,
                error_type="ValueError" if i % 6 == 0 else None,
                error_message="boom é" if i % 4 == 0 else None,
                tags=None if i % 3 == 0 else (["b", "a"] if i % 3 == 1 else []),
                worker=None if i % 2 else f"host:{i}:é",
            )
        )
    return runs


def scope(connection: HTTPConnection) -> RunFilter | None:
    """Requests with ``x-scope`` read one task's runs and another's."""
    if connection.headers.get("x-scope"):
        return RunFilter(task=["add", "slow", "report"])
    return None


@pytest.fixture(scope="module")
async def apps(database_url: str, fresh_table: str) -> AsyncIterator[list[FastAPI]]:
    """The same history served twice: compiled, then by Strawberry alone."""
    found = [
        create_app(database_url, table_name=fresh_table, scope=scope, compiled_reads=on)
        for on in (True, False)
    ]
    live = LiveTasks({"add": _Task(("math", "fast")), "slow": _Task(())})
    services: list[HistoryService] = [app.state.history_service for app in found]
    for service in services:
        service.store.live_tasks = live
    await services[0].store.create_tables()
    await services[0].store.upsert(seed())
    yield found
    for service in services:
        await service.close()
        await service.store.engine.dispose()


@pytest.fixture(scope="module")
async def clients(apps: list[FastAPI]) -> AsyncIterator[list[httpx.AsyncClient]]:
    found = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")
        for app in apps
    ]
    yield found
    for client in found:
        await client.aclose()


async def both(
    clients: list[httpx.AsyncClient],
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    scoped: bool = False,
) -> tuple[str, str]:
    """The response texts of the compiled and the plain endpoint."""
    body = {"query": query, "variables": variables or {}}
    headers = {"x-scope": "1"} if scoped else {}
    texts = []
    for client in clients:
        with watch(client) as statements:
            response = await client.post("/tasks-graphql", json=body, headers=headers)
        texts.append((response.status_code, Answer(response.text, statements)))
    assert texts[0][0] == texts[1][0], texts
    return texts[0][1], texts[1][1]


class Answer(str):
    """A response's text, and whether the compiled statement answered it."""

    compiled: bool

    def __new__(cls, text: str, statements: list[str]) -> Answer:
        answer = super().__new__(cls, text)
        answer.compiled = any(sql.endswith(" AS data") for sql in statements)
        return answer


@contextlib.contextmanager
def watch(client: httpx.AsyncClient) -> Iterator[list[str]]:
    """The SQL of the reads the app behind ``client`` sends meanwhile (seen
    on their way to the driver, not changed)."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    reads = transport.app.state.history_service.store.reads  # type: ignore[attr-defined]
    fetch, seen = reads.fetch, []

    async def watched(read: Any, params: Any = None) -> Any:
        seen.append(read.sql)
        return await fetch(read, params)

    reads.fetch = watched
    try:
        yield seen
    finally:
        del reads.fetch


def ordered(text: str) -> Any:
    """A response parsed with every object as its list of pairs, in order."""
    return json.loads(text, object_pairs_hook=list)


def same(ours: str, theirs: str) -> bool:
    """Whether both responses are the same, key order included; the first
    difference is printed when not."""
    a, b = ordered(ours), ordered(theirs)
    if a != b:
        print("first difference:", _difference(a, b, "$"))
    return bool(a == b)


def _difference(a: Any, b: Any, path: str) -> str:
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _difference(x, y, f"{path}[{index}]")
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0]:
        return _difference(a[1], b[1], f"{path}.{a[0]}")
    return f"{path}: {a!r} != {b!r}"


def compiled(answer: Answer) -> bool:
    """Whether PostgreSQL wrote the response (the compiled statement ran)."""
    return answer.compiled


PAGE = """
query Page($first: Int, $after: String, $last: Int, $before: String,
           $order: TaskRunOrder, $filter: TaskRunFilter, $deep: Boolean!) {
  runs(first: $first, after: $after, last: $last, before: $before,
       orderBy: $order, filter: $filter) {
    __typename totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor __typename }
    edges {
      cursor
      node {
        ...Run
        parent @include(if: $deep) { ...Run root { runId } }
        kids: children(first: 2) {
          totalCount
          edges { cursor node { runId duration } }
          pageInfo { hasNextPage hasPreviousPage endCursor }
        }
      }
    }
  }
}
fragment Run on TaskRun {
  __typename id runId task priority state queued start end duration params
  retryAttempt tags parentRunId rootRunId updated worker error { type message }
  ... on Node { nodeId: id }
}
"""

ORDERS = ("QUEUED_DESC", "QUEUED_ASC", "START_DESC", "START_ASC", "END_DESC",
          "END_ASC", "DURATION_DESC", "DURATION_ASC")  # fmt: skip


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("scoped", [False, True])
async def test_compiled_walks_match_strawberry_both_ways(
    clients: list[httpx.AsyncClient], order: str, scoped: bool
) -> None:
    """Walks forward then back over every order: every page the same, its
    cursors valid on both paths."""
    variables: dict[str, Any] = {"first": 7, "order": order, "deep": True}
    pages = 0
    while True:
        ours, theirs = await both(clients, PAGE, variables, scoped=scoped)
        assert compiled(ours) and not compiled(theirs)
        assert same(ours, theirs)
        info = json.loads(ours)["data"]["runs"]["pageInfo"]
        pages += 1
        if not info["hasNextPage"]:
            break
        variables = {**variables, "after": info["endCursor"]}
    assert pages > 3
    back = {"last": 5, "before": info["startCursor"], "order": order, "deep": False}
    ours, theirs = await both(clients, PAGE, back, scoped=scoped)
    assert compiled(ours) and same(ours, theirs)


FILTERS: list[dict[str, Any]] = [
    {"task": ["add"], "state": ["SUCCESS", "FAILURE"]},
    {"tags": ["math"]},
    {"params": {"n": 1}},
    {"or": [{"priority": ["HIGH"]}, {"not": {"task": ["slow"]}}]},
    {"queuedAfter": "2026-01-01T00:00:03+00:00", "parentRunId": "run-001"},
    {"errorContains": "BOOM"},
    {"task": []},
]


@pytest.mark.parametrize("run_filter", FILTERS)
async def test_compiled_filters_match_strawberry(
    clients: list[httpx.AsyncClient], run_filter: dict[str, Any]
) -> None:
    variables = {"first": 30, "filter": run_filter, "deep": False}
    ours, theirs = await both(clients, PAGE, variables)
    assert compiled(ours) and same(ours, theirs)


LOOKUPS = """
query ($id: String!, $gid: ID!, $gids: [ID!]!, $skip: Boolean!) {
  __typename
  run(id: $id) { runId parent { runId } root { task } }
  missing: run(id: "nope") { runId }
  node(id: $gid) { id __typename ... on TaskRun { state @skip(if: $skip) } }
  nodes(ids: $gids) { id ... on TaskRun { runId children { totalCount } } }
  count: runs(filter: {task: ["report"]}) { totalCount }
}
"""


def gid(run_id: str) -> str:
    import base64

    return base64.b64encode(f"TaskRun:{run_id}".encode()).decode()


@pytest.mark.parametrize("skip", [False, True])
async def test_compiled_lookups_match_strawberry(
    clients: list[httpx.AsyncClient], skip: bool
) -> None:
    variables = {
        "id": "run-004",
        "gid": gid("rún-011"),
        "gids": [gid("run-005"), gid("absent"), gid("run-001"), gid("run-005")],
        "skip": skip,
    }
    for scoped in (False, True):
        ours, theirs = await both(clients, LOOKUPS, variables, scoped=scoped)
        assert compiled(ours) and same(ours, theirs)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ runs(first: 101) { totalCount } }", {}),
        ("{ runs(after: \"forged\") { totalCount } }", {}),
        ("query ($f: TaskRunFilter) { runs(filter: $f) { totalCount } }",
         {"f": {"queuedWithin": "soon"}}),
        ("{ nodes(ids: [\"VGFzazp4\"]) { id } }", {}),
        ("{ runs { approximateCount } tasks { name } }", {}),
        ("{ __schema { queryType { name } } }", {}),
    ],
)  # fmt: skip
async def test_compiled_leaves_errors_and_the_rest_to_strawberry(
    clients: list[httpx.AsyncClient], query: str, variables: dict[str, Any]
) -> None:
    """Bad input keeps its coded errors; fields the compiler does not cover
    are answered by Strawberry, the same way."""
    ours, theirs = await both(clients, query, variables)
    assert not compiled(ours)
    assert same(ours, theirs)


async def test_compiled_reads_a_nested_page_in_one_statement(
    apps: list[FastAPI], clients: list[httpx.AsyncClient]
) -> None:
    """Runs, their parents, roots and children pages: one statement, where
    Strawberry's DataLoaders take four."""
    counts = []
    for app, client in zip(apps, clients, strict=True):
        reads = app.state.history_service.store.reads
        fetch, seen = reads.fetch, []

        async def counted(
            *args: Any, fetch: Any = fetch, seen: list[int] = seen
        ) -> Any:
            seen.append(1)
            return await fetch(*args)

        reads.fetch = counted
        try:
            body = {"query": PAGE, "variables": {"first": 20, "deep": True}}
            assert (await client.post("/tasks-graphql", json=body)).status_code == 200
        finally:
            del reads.fetch
        counts.append(len(seen))
    assert counts == [1, 5]


async def test_compiled_cursors_page_across_paths(
    clients: list[httpx.AsyncClient],
) -> None:
    """A cursor from the compiled path pages the plain one, and back."""
    query = "query ($a: String) { runs(first: 4, after: $a) { edges { cursor } } }"
    ours, _ = await both(clients, query)
    cursor = json.loads(ours)["data"]["runs"]["edges"][-1]["cursor"]
    ours, theirs = await both(clients, query, {"a": cursor})
    assert compiled(ours) and same(ours, theirs)


# Random operations, from the schema


def _scalars() -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    times = st.integers(-2, 12).map(lambda s: (T0 + timedelta(seconds=s)).isoformat())
    return {
        "DateTime": times.map(nodes.String),
        "JSON": st.sampled_from([{"n": 1}, {}, {"u": "é"}]).map(_json_node),
    }


def _json_node(value: dict[str, Any]) -> graphql.ValueNode:
    return nodes.Object(
        [
            graphql.ObjectFieldNode(
                name=graphql.NameNode(value=key), value=nodes.String(str(item))
            )
            if isinstance(item, str)
            else graphql.ObjectFieldNode(
                name=graphql.NameNode(value=key), value=nodes.Int(item)
            )
            for key, item in value.items()
        ]
    )


class _Tame(graphql.Visitor):
    """Most generated page sizes are past the limit, cursors and global ids
    forged, durations not ISO 8601: keep some of each, so most operations
    get past validation to be compiled."""

    def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
        name, value = node.name.value, node.value
        if name in ("first", "last") and isinstance(value, graphql.IntValueNode):
            return graphql.ArgumentNode(
                name=node.name, value=nodes.Int(int(value.value) % 9)
            )
        if name in ("after", "before") and len(str(graphql.print_ast(value))) % 4:
            return graphql.REMOVE
        if name == "queuedWithin":
            return graphql.ArgumentNode(name=node.name, value=nodes.String("PT1H"))
        return None

    def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> Any:
        if node.name.value == "queuedWithin":
            return graphql.ObjectFieldNode(name=node.name, value=nodes.String("P1D"))
        return None

    def leave_field(self, node: graphql.FieldNode, *_: Any) -> Any:
        names = [argument.name.value for argument in node.arguments or ()]
        if node.name.value in ("node", "nodes"):
            return _real_ids(node)
        if "first" in names and "last" in names:
            kept = tuple(a for a in node.arguments if a.name.value != "last")
            return _with_arguments(node, kept)
        return None


def _with_arguments(
    node: graphql.FieldNode, arguments: tuple[graphql.ArgumentNode, ...]
) -> graphql.FieldNode:
    return graphql.FieldNode(
        alias=node.alias,
        name=node.name,
        arguments=arguments,
        directives=node.directives,
        selection_set=node.selection_set,
    )


def _real_ids(node: graphql.FieldNode) -> graphql.FieldNode:
    """``node``/``nodes`` with most ids those of stored runs."""

    def real(value: graphql.ValueNode) -> graphql.ValueNode:
        literal = isinstance(value, graphql.StringValueNode | graphql.IntValueNode)
        if literal and len(value.value) % 5 != 4:
            return nodes.String(gid(f"run-{len(value.value) * 7 % 95:03d}"))
        if isinstance(value, graphql.ListValueNode):
            return graphql.ListValueNode(values=tuple(real(v) for v in value.values))
        return value

    arguments = tuple(
        graphql.ArgumentNode(name=a.name, value=real(a.value))
        for a in node.arguments or ()
    )
    return _with_arguments(node, arguments)


def _tame(query: str) -> str:
    return graphql.print_ast(graphql.visit(graphql.parse(query), _Tame()))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same operations on every run, as the fuzz tests
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    query=queries(
        build_schema()._schema,
        fields=["runs", "run", "node", "nodes"],
        custom_scalars=_scalars(),
        allow_x00=False,
        allow_null=False,
    ),
    scoped=st.booleans(),
)
async def test_compiled_random_operations_match_strawberry(
    clients: list[httpx.AsyncClient], query: str, scoped: bool
) -> None:
    query = _tame(query)
    ours, theirs = await both(clients, query, scoped=scoped)
    assert same(ours, theirs), query
    # again: a query the compiled path answered is now a prepared one
    again, _ = await both(clients, query, scoped=scoped)
    assert again == ours and again.compiled == ours.compiled, query


BOUNDS = """
query ($order: TaskRunOrder, $after: String, $last: Int, $before: String) {
  runs(first: 6, orderBy: $order, after: $after) {
    pageInfo { startCursor endCursor hasNextPage }
    edges { node { runId } }
  }
  back: runs(last: $last, before: $before, orderBy: $order) {
    pageInfo { endCursor startCursor hasPreviousPage hasNextPage }
  }
}
"""


@pytest.mark.parametrize("order", ORDERS)
async def test_compiled_page_bounds_without_edge_cursors_match_strawberry(
    clients: list[httpx.AsyncClient], order: str
) -> None:
    """``startCursor``/``endCursor`` signed for the page's ends alone."""
    variables: dict[str, Any] = {"order": order, "last": 3}
    for _ in range(4):
        ours, theirs = await both(clients, BOUNDS, variables)
        assert compiled(ours) and same(ours, theirs)
        info = json.loads(ours)["data"]["runs"]["pageInfo"]
        variables = {
            **variables,
            "after": info["endCursor"],
            "before": info["endCursor"],
        }


@pytest.mark.parametrize(("setting", "expected"), [("false", False), ("true", True)])
async def test_compiled_reads_follow_the_environment_setting(
    apps: list[FastAPI],
    database_url: str,
    fresh_table: str,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    expected: bool,
) -> None:
    """``GQL_HISTORY_COMPILED`` decides when the app's option is not given."""
    monkeypatch.setenv("GQL_HISTORY_COMPILED", setting)
    app = create_app(database_url, table_name=fresh_table)
    transport = httpx.ASGITransport(app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            with watch(c) as statements:
                response = await c.post("/tasks-graphql", json={"query": PAGE_OF_IDS})
        assert response.status_code == 200
        assert compiled(Answer(response.text, statements)) is expected
        assert len(response.json()["data"]["runs"]["edges"]) == 3
    finally:
        await app.state.history_service.store.engine.dispose()


PAGE_OF_IDS = "{ runs(first: 3) { edges { node { runId } } } }"
