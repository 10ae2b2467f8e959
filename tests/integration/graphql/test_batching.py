"""SQL statements per query: pages in one, lineage batched by DataLoaders."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fluid.scheduler.db import task_meta
from sqlalchemy import event

from gql_history import HistoryService, TaskHistoryPlugin, create_app
from gql_history.core.cursor import Position
from gql_history.core.filters import RunFilter
from gql_history.core.paging import Page, RunOrder
from gql_history.db.statements import CompiledRead
from gql_history.db.store import HistoryStore
from tests.factories import T0, run_record
from tests.gql import GraphQL


@pytest.fixture(scope="module")
async def history_app(database_url: str, fresh_table: str) -> AsyncIterator[FastAPI]:
    """The history served by Strawberry's execution alone: its DataLoaders
    are what this module counts (compiled reads take one statement, see
    ``test_compiled``)."""
    app = create_app(database_url, table_name=fresh_table, compiled_reads=False)
    service: HistoryService = app.state.history_service
    await service.store.create_tables()
    yield app
    await service.close()
    await service.store.engine.dispose()


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    """10 parents, each with 10 children; every child has 2 children of its own."""
    records = []
    for p in range(10):
        records.append(run_record(f"p{p}", queued=T0 - timedelta(seconds=p)))
        for c in range(10):
            child = f"p{p}c{c}"
            records.append(
                run_record(
                    child,
                    queued=T0 + timedelta(seconds=c),
                    from_run_id=f"p{p}",
                    root_run_id=f"p{p}",
                )
            )
            records += [
                run_record(
                    f"{child}g{g}",
                    queued=T0 + timedelta(seconds=100),
                    from_run_id=child,
                    root_run_id=f"p{p}",
                )
                for g in range(2)
            ]
    await history.store.upsert(records)
    await history.store.present_columns()  # cached: not counted below
    return history


class Statements:
    """The SQL statements run while counting: through SQLAlchemy, and the
    compiled reads the store runs on the driver."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __len__(self) -> int:
        return len(self.seen)

    def record(self, *args: Any) -> None:
        self.seen.append(args[2])


@pytest.fixture
def statements(
    seeded: TaskHistoryPlugin, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Statements]:
    found = Statements()
    reads = seeded.store.reads
    fetch = reads.fetch

    async def counted(
        read: CompiledRead, params: Mapping[str, Any] | None = None
    ) -> Any:
        found.seen.append(read.sql)
        return await fetch(read, params)

    monkeypatch.setattr(reads, "fetch", counted)
    engine = seeded.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", found.record)
    yield found
    event.remove(engine, "before_cursor_execute", found.record)


async def test_page_of_100_runs_with_parent_costs_two_statements(
    graphql: GraphQL, statements: Statements
) -> None:
    query = "{ runs(first: 100) { edges { node { runId parent { runId } } } } }"
    edges = (await graphql.data(query))["runs"]["edges"]
    assert len(edges) == 100
    assert sum(edge["node"]["parent"] is not None for edge in edges) == 100
    assert len(statements) == 2


async def test_parent_and_root_share_one_batch(
    graphql: GraphQL, statements: Statements
) -> None:
    query = """{ runs(first: 100) { edges { node {
        parent { runId } root { runId }
    } } } }"""
    await graphql.data(query)
    assert len(statements) == 2


async def test_children_of_a_page_cost_one_statement_and_their_counts_one(
    graphql: GraphQL, statements: Statements
) -> None:
    query = """{ runs(first: 100, orderBy: QUEUED_ASC) { edges { node { runId
        children(first: 1) { totalCount edges { node { runId } } }
    } } } }"""
    edges = (await graphql.data(query))["runs"]["edges"]
    first = {e["node"]["runId"]: e["node"]["children"] for e in edges}
    assert first["p0"] == {"totalCount": 10, "edges": [{"node": {"runId": "p0c0"}}]}
    assert first["p3c7"] == {"totalCount": 2, "edges": [{"node": {"runId": "p3c7g0"}}]}
    assert len(statements) == 3


async def test_nested_lineage_costs_a_statement_per_level(
    graphql: GraphQL, statements: Statements
) -> None:
    query = """{ runs(first: 100) { edges { node {
        parent { parent { runId } } children { edges { node { runId } } }
    } } } }"""
    await graphql.data(query)
    assert len(statements) == 4  # page, parents, their parents, children


async def test_nodes_and_runs_by_id_share_one_statement(
    graphql: GraphQL, statements: Statements
) -> None:
    run_ids = [f"p{p}c{c}" for p in range(5) for c in range(10)]
    global_ids = [
        base64.b64encode(f"TaskRun:{run_id}".encode()).decode() for run_id in run_ids
    ]
    query = """query ($ids: [ID!]!) {
        nodes(ids: $ids) { ... on TaskRun { runId } }
        one: run(id: "p9") { runId } two: run(id: "p8c8") { runId }
    }"""
    data = await graphql.data(query, ids=global_ids)
    assert [node["runId"] for node in data["nodes"]] == run_ids
    assert (data["one"], data["two"]) == ({"runId": "p9"}, {"runId": "p8c8"})
    assert len(statements) == 1


async def test_total_count_alone_runs_only_a_count(
    graphql: GraphQL, statements: Statements
) -> None:
    assert await graphql.data("{ runs { totalCount } }") == {
        "runs": {"totalCount": 310}
    }
    assert [s.split()[:2] for s in statements.seen] == [["SELECT", "count(*)"]]


async def test_page_without_total_count_runs_no_count(
    graphql: GraphQL, statements: Statements
) -> None:
    cursor = (await graphql.data("{ runs(first: 1) { pageInfo { endCursor } } }"))[
        "runs"
    ]["pageInfo"]["endCursor"]
    query = """query ($after: String) { runs(first: 5, after: $after) {
        edges { node { runId } } pageInfo { hasPreviousPage hasNextPage }
    } }"""
    page = (await graphql.data(query, after=cursor))["runs"]
    assert page["pageInfo"] == {"hasPreviousPage": True, "hasNextPage": True}
    assert len(statements) == 2
    assert not any("count(" in statement for statement in statements.seen)


# The store's batched lineage reads


def ids(page: Page) -> list[str]:
    return [row.id for row in page.runs]


async def test_store_children_pages_reads_every_parent_in_one_statement(
    seeded: TaskHistoryPlugin, statements: Statements
) -> None:
    pages = await seeded.store.children_pages(["p1", "p2c3", "p1", "none"], limit=3)
    assert {parent: (ids(page), page.has_more) for parent, page in pages.items()} == {
        "p1": (["p1c0", "p1c1", "p1c2"], True),
        "p2c3": (["p2c3g0", "p2c3g1"], False),
        "none": ([], False),
    }
    assert len(statements) == 1


async def test_store_children_pages_reads_after_and_before_a_position(
    seeded: TaskHistoryPlugin,
) -> None:
    start = Position(T0 + timedelta(seconds=4), "p1c4")
    forward = await seeded.store.children_pages(
        ["p1", "p2"], limit=2, start=start, probe_before=True
    )
    assert {
        p: (ids(page), page.has_more, page.has_before) for p, page in forward.items()
    } == {
        "p1": (["p1c5", "p1c6"], True, True),
        "p2": (["p2c4", "p2c5"], True, True),
    }
    backward = await seeded.store.children_pages(
        ["p1"], limit=3, start=start, backward=True, probe_before=True
    )
    assert (
        ids(backward["p1"]),
        backward["p1"].has_more,
        backward["p1"].has_before,
    ) == (
        ["p1c1", "p1c2", "p1c3"],
        True,
        True,
    )


async def test_store_children_pages_match_single_pages(
    seeded: TaskHistoryPlugin,
) -> None:
    start = Position(T0 + timedelta(seconds=2), "p4c2")
    for backward in (False, True):
        batched = await seeded.store.children_pages(
            ["p4"], limit=4, start=start, backward=backward, probe_before=True
        )
        single = await seeded.store.page(
            RunFilter(from_run_id="p4"),
            order=RunOrder.QUEUED_ASC,
            limit=4,
            start=start,
            backward=backward,
            probe_before=True,
        )
        assert (
            ids(batched["p4"]),
            batched["p4"].has_more,
            batched["p4"].has_before,
        ) == (
            ids(single),
            single.has_more,
            single.has_before,
        )


async def test_store_count_children_counts_every_parent_in_one_statement(
    seeded: TaskHistoryPlugin, statements: Statements
) -> None:
    assert await seeded.store.count_children(["p0", "p0c1", "p0c1g0", "none"]) == {
        "p0": 10,
        "p0c1": 2,
        "p0c1g0": 0,
        "none": 0,
    }
    assert len(statements) == 1


async def test_store_lineage_of_a_task_db_plugin_table_is_empty(
    seeded: TaskHistoryPlugin, table_name: str
) -> None:
    """A table aio-fluid's TaskDbPlugin made has no lineage columns."""
    legacy = f"{table_name}_legacy"
    metadata = sa.MetaData()
    task_meta(metadata, table_name=legacy)
    async with seeded.store.engine.begin() as conn:
        await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{legacy}"'))
        await conn.run_sync(metadata.create_all)
    store = HistoryStore(seeded.store.engine, metadata.tables[legacy])
    assert await store.children_pages(["a"], limit=5) == {
        "a": Page(runs=[], has_more=False, has_before=False)
    }
    assert await store.count_children(["a"]) == {"a": 0}


async def test_a_failing_field_leaves_the_loads_it_shares_to_the_others(
    graphql: GraphQL, seeded: HistoryService
) -> None:
    """graphql-core cancels a failed field's siblings; a parent load they
    share with other fields must not be cancelled with them."""
    query = """{
      bad: run(id: "p0c0") { parent { runId } children(first: 100000) { totalCount } }
      ok: run(id: "p0c1") { parent { runId } }
    }"""
    body = await graphql.post(query)
    assert body["data"] == {"bad": None, "ok": {"parent": {"runId": "p0"}}}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
