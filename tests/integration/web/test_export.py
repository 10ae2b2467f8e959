"""``GET /tasks-history/export``: every run of a REST query, as NDJSON or
CSV, against SQL truth over tie-heavy runs."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import httpx
import pytest
from fluid.scheduler import TaskState
from sqlalchemy import text

from gql_history import HistoryService
from tests.factories import T0, run_record


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    await history.store.upsert(
        [
            run_record(
                f"e{i:04d}",
                name=("report", "add")[i % 2],
                state=(TaskState.success, TaskState.failure)[i % 3 == 0],
                queued=T0 + timedelta(seconds=i // 100),
                start=T0 + timedelta(seconds=i % 7),
                end=T0 + timedelta(seconds=i % 7 + i % 5),
                params={"n": i % 3, "text": 'a "quoted", comma'},
                error_message="boom, again" if i % 3 == 0 else None,
            )
            for i in range(1200)
        ]
    )
    return history


async def truth(history: HistoryService, where: str, order: str) -> list[str]:
    sql = f'SELECT id FROM "{history.store.table.name}" WHERE {where} ORDER BY {order}'
    async with history.store.engine.connect() as conn:
        return list((await conn.execute(text(sql))).scalars())


async def test_export_ndjson_streams_every_run_in_order(
    rest: httpx.AsyncClient, seeded: HistoryService
) -> None:
    response = await rest.get("/tasks-history/export", params={"task": "report"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    runs = [json.loads(line) for line in response.text.splitlines()]
    expected = await truth(seeded, "name = 'report'", "queued DESC, id DESC")
    assert len(expected) == 600
    assert [run["id"] for run in runs] == expected
    assert runs[0]["params"] == {
        "n": runs[0]["params"]["n"],
        "text": 'a "quoted", comma',
    }


async def test_export_csv_in_another_order_with_a_row_limit(
    rest: httpx.AsyncClient, seeded: HistoryService
) -> None:
    params = {"format": "csv", "order": "DURATION_DESC", "max_rows": 777}
    response = await rest.get("/tasks-history/export", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = await truth(seeded, "true", '("end" - start) DESC NULLS LAST, id DESC')
    assert [row["id"] for row in rows] == expected[:777]
    failed = next(row for row in rows if row["state"] == "failure")
    assert failed["error_message"] == "boom, again"
    assert json.loads(failed["params"])["text"] == 'a "quoted", comma'


async def test_export_takes_every_rest_filter(
    rest: httpx.AsyncClient, seeded: HistoryService
) -> None:
    params = {"state": "failure", "error_contains": "BOOM", "params": '{"n": 0}'}
    response = await rest.get("/tasks-history/export", params=params)
    ids = [json.loads(line)["id"] for line in response.text.splitlines()]
    where = (
        "state = 'failure' AND error_message ILIKE '%boom%' AND params @> '{\"n\": 0}'"
    )
    assert ids == await truth(seeded, where, "queued DESC, id DESC")
    assert ids


@pytest.mark.parametrize(
    "params",
    [{"format": "xml"}, {"max_rows": -1}, {"max_rows": 1_000_001}, {"order": "X"}],
)
async def test_export_bad_input_is_a_422(
    rest: httpx.AsyncClient, seeded: HistoryService, params: dict[str, object]
) -> None:
    response = await rest.get("/tasks-history/export", params=params)
    assert response.status_code == 422


async def test_export_of_nothing_is_empty_but_for_the_csv_header(
    rest: httpx.AsyncClient, seeded: HistoryService
) -> None:
    empty = await rest.get("/tasks-history/export", params={"task": "nope"})
    assert (empty.status_code, empty.text) == (200, "")
    header = await rest.get(
        "/tasks-history/export", params={"task": "nope", "format": "csv"}
    )
    assert header.text.splitlines() == [
        "id,task,priority,state,queued,start,end,params,from_run_id,root_run_id,"
        "retry_attempt,error_type,error_message,tags,worker"
    ]
