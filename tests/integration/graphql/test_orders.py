"""Orders by start, end and duration: whole walks over tie-heavy runs, many
without the key, against SQL truth, each page served by its order's index."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fluid.scheduler import TaskState
from sqlalchemy import text

from gql_history import HistoryService
from gql_history.core.paging import RunOrder
from gql_history.core.records import RunRecord
from gql_history.db.keyset import page_statement
from tests.factories import T0, run_record
from tests.gql import GraphQL, codes
from tests.integration.graphql.test_relay import walk_backward, walk_forward
from tests.plans import plan_of

#: The SQL of each new order, written out independently of the code.
SQL_ORDER = {
    "START_DESC": "start DESC NULLS LAST, id DESC",
    "START_ASC": "start ASC NULLS LAST, id ASC",
    "END_DESC": '"end" DESC NULLS LAST, id DESC',
    "END_ASC": '"end" ASC NULLS LAST, id ASC',
    "DURATION_DESC": '("end" - start) DESC NULLS LAST, id DESC',
    "DURATION_ASC": '("end" - start) ASC NULLS LAST, id ASC',
}
ORDERS = list(SQL_ORDER)


def seed_records() -> list[RunRecord]:
    """500 runs: a fifth queued (no start), a fifth running (no end), the
    rest finished with starts, ends and durations in heavy ties.

    Ids are hashes, so their order has nothing to do with insertion order.
    """
    records = []
    for i in range(500):
        run_id = hashlib.md5(f"o{i}".encode()).hexdigest()[:12]
        start = T0 + timedelta(seconds=i % 7)
        end = start + timedelta(seconds=(i % 5) * 0.5, days=i % 2)
        fields: dict[str, Any] = dict(
            name=("add", "report")[i % 2], queued=T0 - timedelta(seconds=i % 3)
        )
        if i % 5 == 0:
            records.append(run_record(run_id, **fields))
        elif i % 5 == 1:
            records.append(
                run_record(run_id, state=TaskState.running, start=start, **fields)
            )
        else:
            records.append(
                run_record(
                    run_id, state=TaskState.success, start=start, end=end, **fields
                )
            )
    return records


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    await history.store.upsert(seed_records())
    return history


async def truth(history: HistoryService, order: str, where: str = "true") -> list[str]:
    sql = (
        f'SELECT id FROM "{history.store.table.name}" WHERE {where} '
        f"ORDER BY {SQL_ORDER[order]}"
    )
    async with history.store.engine.connect() as conn:
        return list((await conn.execute(text(sql))).scalars())


@pytest.mark.parametrize("order", ORDERS)
async def test_runs_walk_each_order_both_ways_against_sql(
    graphql: GraphQL, seeded: HistoryService, order: str
) -> None:
    expected = await truth(seeded, order)
    assert len(expected) == 500
    assert await walk_forward(graphql, 13, orderBy=order) == expected
    assert await walk_backward(graphql, 13, orderBy=order) == expected


@pytest.mark.parametrize("order", ["END_DESC", "DURATION_ASC"])
async def test_runs_walk_a_filtered_set_in_a_new_order(
    graphql: GraphQL, seeded: HistoryService, order: str
) -> None:
    expected = await truth(seeded, order, "name = 'report'")
    assert len(expected) == 250
    run_filter = {"task": ["report"]}
    assert await walk_forward(graphql, 40, orderBy=order, filter=run_filter) == (
        expected
    )
    assert await walk_backward(graphql, 40, orderBy=order, filter=run_filter) == (
        expected
    )


async def test_runs_without_the_key_come_last_in_both_directions(
    graphql: GraphQL, seeded: HistoryService
) -> None:
    sql = f'SELECT id FROM "{seeded.store.table.name}" WHERE "end" IS NULL'
    async with seeded.store.engine.connect() as conn:
        unended = set((await conn.execute(text(sql))).scalars())
    assert len(unended) == 200
    for order in ("END_DESC", "END_ASC", "DURATION_DESC", "DURATION_ASC"):
        ids = await walk_forward(graphql, 100, orderBy=order)
        assert set(ids[-200:]) == unended


@pytest.mark.parametrize(
    ("mine", "other"), [("END_DESC", "END_ASC"), ("DURATION_DESC", "QUEUED_DESC")]
)
async def test_runs_cursor_of_one_order_is_refused_by_another(
    graphql: GraphQL, seeded: HistoryService, mine: str, other: str
) -> None:
    page = """query($o: TaskRunOrder, $a: String) {
      runs(orderBy: $o, first: 1, after: $a) { pageInfo { endCursor } }
    }"""
    cursor = (await graphql.data(page, o=mine))["runs"]["pageInfo"]["endCursor"]
    errors = await graphql.errors(page, o=other, a=cursor)
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert errors[0]["message"] == (
        f"this cursor belongs to the {mine} order, not {other}"
    )


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("backward", [False, True])
async def test_page_of_each_order_reads_its_index_without_sorting(
    seeded: HistoryService, order: str, backward: bool
) -> None:
    store = seeded.store
    run_order = RunOrder(order)
    statement = page_statement(
        store.table,
        await store.select_runs(),
        (await store.bound(None)).condition,
        order=run_order,
        backward=backward,
        has_start=True,
        probe=False,
        rows=21,
    )
    start = run_order.position(seed_records()[7])
    params = {"start_key": start.key, "start_id": start.id}
    # a plan without a sort, sorts forbidden, proves the index serves the order
    text_plan = await plan_of(
        store, statement, params, disabled=("seqscan", "sort", "bitmapscan")
    )
    key = run_order.key
    suffix = "desc" if run_order.descending else "asc"
    assert f"ix_{store.table.name}_{key}_{suffix}_id" in text_plan
    assert "Sort" not in text_plan and "Seq Scan" not in text_plan


@pytest.mark.parametrize("order", ["DURATION_DESC", "START_ASC"])
async def test_rest_order_walks_every_run_once_against_sql(
    rest: httpx.AsyncClient, seeded: HistoryService, order: str
) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"order": order, "limit": 37}
    while True:
        response = await rest.get("/tasks-history", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [run["id"] for run in body["data"]]
        if not body["cursor"]:
            break
        params = {"cursor": body["cursor"]}
    assert seen == await truth(seeded, order)


async def test_rest_cursor_of_one_order_is_a_422_in_another(
    rest: httpx.AsyncClient, seeded: HistoryService
) -> None:
    first = await rest.get("/tasks-history", params={"order": "END_ASC", "limit": 2})
    cursor = first.json()["cursor"]
    response = await rest.get(
        "/tasks-history", params={"cursor": cursor, "order": "END_DESC"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == (
        "this cursor belongs to the END_ASC order, not END_DESC"
    )
    same = await rest.get(
        "/tasks-history", params={"cursor": cursor, "order": "END_ASC"}
    )
    assert same.status_code == 200
