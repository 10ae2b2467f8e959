"""Relative windows: ``queuedWithin`` on the database's clock, in GraphQL
and REST, against SQL truth."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from gql_history import HistoryService
from tests.factories import run_record
from tests.gql import GraphQL, codes

COUNT = "query($f: TaskRunFilter) { runs(filter: $f) { totalCount } }"
#: Minutes ago each run was queued, on the database's clock.
AGES = [1, 1, 5, 30, 59, 61, 61, 120, 60 * 24 + 1, 60 * 24 * 8]


@pytest.fixture(scope="module")
async def seeded(history: HistoryService) -> HistoryService:
    async with history.store.engine.connect() as conn:
        now = (await conn.execute(text("SELECT now()"))).scalar_one()
    await history.store.upsert(
        [
            run_record(f"w{i}", queued=now - timedelta(minutes=age))
            for i, age in enumerate(AGES)
        ]
    )
    return history


async def truth(history: HistoryService, interval: str) -> int:
    sql = (
        f'SELECT count(*) FROM "{history.store.table.name}" '
        f"WHERE queued >= now() - interval '{interval}'"
    )
    async with history.store.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


@pytest.mark.parametrize(
    ("duration", "interval", "expected"),
    [
        ("PT1H", "1 hour", 5),
        ("PT10M", "10 minutes", 3),
        ("P1D", "1 day", 8),
        ("P1W", "7 days", 9),
        ("P1DT12H", "36 hours", 9),
        ("P1M", "30 days", 10),
    ],
)
async def test_runs_queued_within_counts_what_sql_counts(
    graphql: GraphQL,
    seeded: HistoryService,
    duration: str,
    interval: str,
    expected: int,
) -> None:
    assert await truth(seeded, interval) == expected
    data = await graphql.data(COUNT, f={"queuedWithin": duration})
    assert data["runs"]["totalCount"] == expected


async def test_runs_queued_within_combines_with_other_filters(
    graphql: GraphQL, seeded: HistoryService
) -> None:
    run_filter = {"or": [{"queuedWithin": "PT2M"}, {"not": {"queuedWithin": "P2D"}}]}
    assert (await graphql.data(COUNT, f=run_filter))["runs"]["totalCount"] == 3


@pytest.mark.parametrize(
    "duration", ["1h", "PT", "P-1D", "PT0S", "-PT1H", "1:00:00", "P999999D"]
)
async def test_runs_queued_within_a_bad_duration_is_bad_user_input(
    graphql: GraphQL, seeded: HistoryService, duration: str
) -> None:
    errors = await graphql.errors(COUNT, f={"queuedWithin": duration})
    assert codes(errors) == ["BAD_USER_INPUT"]
    assert "queuedWithin" in errors[0]["message"]


async def test_rest_queued_within_filters_and_survives_the_cursor(
    rest: httpx.AsyncClient, seeded: HistoryService
) -> None:
    first = await rest.get(
        "/tasks-history", params={"queued_within": "PT1H", "limit": 3}
    )
    assert first.status_code == 200, first.text
    body = first.json()
    second = await rest.get("/tasks-history", params={"cursor": body["cursor"]})
    ids = [run["id"] for run in body["data"] + second.json()["data"]]
    assert sorted(ids) == ["w0", "w1", "w2", "w3", "w4"]
    assert second.json()["cursor"] == ""


async def test_rest_queued_within_a_bad_duration_is_a_422(
    rest: httpx.AsyncClient, seeded: HistoryService
) -> None:
    response = await rest.get("/tasks-history", params={"queued_within": "an hour"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "queued_within"]


async def test_run_stats_window_starts_queued_within_before_now(
    graphql: GraphQL, seeded: HistoryService
) -> None:
    query = """query($f: TaskRunFilter) {
      runStats(filter: $f, bucket: MINUTE) { total series { start } }
    }"""
    stats = (await graphql.data(query, f={"queuedWithin": "PT10M"}))["runStats"]
    assert stats["total"] == 3
    assert len(stats["series"]) == 11
