"""runStats and the facets, checked against the seeded rows, counted in Python
from a plain SELECT."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fluid.scheduler import TaskManager, TaskState

from gql_history import TaskHistoryPlugin
from gql_history.cli import demo_tasks as tasks
from gql_history.core.records import RunRecord
from gql_history.db.statements import CompiledRead
from tests.factories import T0, run_record
from tests.gql import GraphQL, codes

#: The window the statistics are asked for: five hours of the six seeded.
AFTER, BEFORE = T0 + timedelta(minutes=30), T0 + timedelta(hours=5, minutes=30)
NAMES = ("add", "report", "slow", "ping", "gone")  # "gone" is not registered
STATES = (
    TaskState.success,
    TaskState.success,
    TaskState.failure,
    TaskState.running,
    TaskState.queued,
    TaskState.aborted,
    TaskState.rate_limited,
)
PRIORITIES = ("high", "medium", "low")
STATS = """
query($filter: TaskRunFilter, $bucket: StatsBucket) {
  runStats(filter: $filter, bucket: $bucket) {
    bucket windowStart windowEnd total
    byState { state count }
    byTask { task count }
    duration { count min avg p50 p95 max }
    series { start total byState { state count } }
  }
}
"""


def seeded() -> list[RunRecord]:
    """300 runs over six hours: every state, duration and kind of tags."""
    draw = random.Random(6)
    runs = []
    for i in range(300):
        queued = T0 + timedelta(seconds=draw.randrange(6 * 3600))
        state = draw.choice(STATES)
        start = end = None
        if state is not TaskState.queued:
            start = queued + timedelta(milliseconds=draw.randrange(2000))
        if state is TaskState.rate_limited:  # never ran: aio-fluid's times
            end = start
        elif state not in (TaskState.queued, TaskState.running):
            assert start is not None
            end = start + timedelta(milliseconds=draw.randrange(1, 90_000))
        stored_tags: Any = draw.choice((None, [], ["ops"], ["billing", "x"]))
        runs.append(
            run_record(
                f"stats-{i}",
                name=draw.choice(NAMES),
                priority=draw.choice(PRIORITIES),
                state=state,
                queued=queued,
                start=start,
                end=end,
                tags=stored_tags,
            )
        )
    return runs


@pytest.fixture(scope="module")
async def stats_plugin(
    database_url: str, fresh_table: str
) -> AsyncIterator[TaskHistoryPlugin]:
    """A plugin with the example tasks registered (runs without stored tags
    count under their task's tags), over the seeded runs."""
    manager = TaskManager()
    manager.register_from_module(tasks)
    plugin = TaskHistoryPlugin(database_url, table_name=fresh_table)
    manager.with_plugin(plugin)
    await plugin.create_tables()
    await plugin.store.upsert(seeded())
    yield plugin
    await plugin.close()


@pytest.fixture(scope="module")
async def graphql(stats_plugin: TaskHistoryPlugin) -> AsyncIterator[GraphQL]:
    app = FastAPI()
    stats_plugin.register_routes(app)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield GraphQL(client)


async def rows(plugin: TaskHistoryPlugin) -> list[Any]:
    """Every seeded row, read with plain SQL."""
    query = sa.text(
        'SELECT id, name, priority, state, queued, start, "end", tags '
        f'FROM "{plugin.table_name}"'
    )
    async with plugin.engine.connect() as conn:
        return list((await conn.execute(query)).all())


def state_counts(counts: Counter[str]) -> list[dict[str, Any]]:
    order = [state.value for state in TaskState]
    return [
        {"state": state.upper(), "count": counts[state]}
        for state in sorted(counts, key=order.index)
    ]


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    moment = start.replace(minute=0, second=0, microsecond=0)
    while moment <= end:
        yield moment
        moment += timedelta(hours=1)


async def test_run_stats_agree_with_the_rows(
    graphql: GraphQL, stats_plugin: TaskHistoryPlugin
) -> None:
    run_filter = {
        "queuedAfter": AFTER.isoformat(),
        "queuedBefore": BEFORE.isoformat(),
        "priority": ["HIGH", "MEDIUM"],
    }
    data = await graphql.data(STATS, filter=run_filter, bucket="HOUR")
    runs = [
        row
        for row in await rows(stats_plugin)
        if AFTER <= row.queued <= BEFORE and row.priority in ("high", "medium")
    ]
    durations = [
        (row.end - row.start).total_seconds()
        for row in runs
        if row.start and row.end and row.state != "rate_limited"
    ]
    assert min(durations) > 0
    percentiles = statistics.quantiles(durations, n=100, method="inclusive")
    by_task = Counter(row.name for row in runs)
    assert data["runStats"] == {
        "bucket": "HOUR",
        "windowStart": AFTER.isoformat(),
        "windowEnd": BEFORE.isoformat(),
        "total": len(runs),
        "byState": state_counts(Counter(row.state for row in runs)),
        "byTask": [
            {"task": name, "count": count}
            for name, count in sorted(by_task.items(), key=lambda i: (-i[1], i[0]))
        ],
        "duration": {
            "count": len(durations),
            "min": pytest.approx(min(durations)),
            "avg": pytest.approx(statistics.fmean(durations)),
            "p50": pytest.approx(statistics.median(durations)),
            "p95": pytest.approx(percentiles[94]),
            "max": pytest.approx(max(durations)),
        },
        "series": [
            {
                "start": hour.isoformat(),
                "total": len(counted := [r for r in runs if hour <= r.queued < end]),
                "byState": state_counts(Counter(row.state for row in counted)),
            }
            for hour in hours(AFTER, BEFORE)
            if (end := hour + timedelta(hours=1))
        ],
    }
    assert len(data["runStats"]["series"]) == 6


async def test_run_stats_read_only_the_parts_selected(
    graphql: GraphQL, stats_plugin: TaskHistoryPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    reads = stats_plugin.store.reads
    fetch = reads.fetch

    async def record(read: CompiledRead, params: Any = None) -> Any:
        statements.append(read.sql)
        return await fetch(read, params)

    monkeypatch.setattr(reads, "fetch", record)
    await graphql.data("{ runStats { total byState { count } } }")  # one for both
    shared = len(statements)
    await graphql.data("{ runStats(bucket: DAY) { windowStart series { total } } }")
    assert (shared, len(statements)) == (1, 2)
    assert "date_bin" in statements[1]


async def test_run_stats_default_to_the_last_buckets_until_now(
    graphql: GraphQL,
) -> None:
    data = await graphql.data(
        "{ runStats(bucket: DAY) { total windowStart windowEnd series { start } } }"
    )
    stats = data["runStats"]
    end = datetime.fromisoformat(stats["windowEnd"])
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    assert (stats["total"], stats["windowStart"], len(stats["series"])) == (
        0,
        (midnight - timedelta(days=29)).isoformat(),
        30,
    )
    assert stats["series"][-1]["start"] == midnight.isoformat()


async def test_run_stats_refuse_more_buckets_than_allowed(graphql: GraphQL) -> None:
    errors = await graphql.errors(
        "query($filter: TaskRunFilter) { runStats(filter: $filter, bucket: MINUTE)"
        " { total } }",
        filter={"queuedAfter": T0.isoformat(), "queuedBefore": "2026-01-02T00:00:00Z"},
    )
    assert [(error["message"], error["extensions"]) for error in errors] == [
        (
            "the window holds 1441 minute buckets, more than 1000: narrow "
            "the filter's queued-after/queued-before window, or use wider buckets",
            {"code": "BAD_USER_INPUT"},
        )
    ]
    assert codes(
        await graphql.errors(
            "query($filter: TaskRunFilter) { runStats(filter: $filter) { total } }",
            filter={
                "queuedAfter": BEFORE.isoformat(),
                "queuedBefore": AFTER.isoformat(),
            },
        )
    ) == ["BAD_USER_INPUT"]


async def test_task_names_count_the_runs_of_each_task(
    graphql: GraphQL, stats_plugin: TaskHistoryPlugin
) -> None:
    data = await graphql.data(
        "query($filter: TaskRunFilter) { all: taskNames { task count }"
        " failed: taskNames(filter: $filter) { task count } }",
        filter={"state": ["FAILURE"]},
    )
    every = await rows(stats_plugin)

    def ranked(counts: Counter[str]) -> list[dict[str, Any]]:
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [{"task": name, "count": count} for name, count in ordered]

    assert data == {
        "all": ranked(Counter(row.name for row in every)),
        "failed": ranked(Counter(r.name for r in every if r.state == "failure")),
    }


async def test_task_tags_count_stored_tags_and_live_ones_of_untagged_runs(
    graphql: GraphQL, stats_plugin: TaskHistoryPlugin
) -> None:
    data = await graphql.data(
        "query($filter: TaskRunFilter) { taskTags(filter: $filter) { tag count } }",
        filter={"task": ["report", "add", "gone"]},
    )
    registry = stats_plugin.task_manager.registry  # type: ignore[union-attr]
    counts: Counter[str] = Counter()
    for row in await rows(stats_plugin):
        if row.name not in ("report", "add", "gone"):
            continue
        if row.tags is not None:
            counts.update(row.tags)
        elif row.name in registry:
            counts.update(registry[row.name].tags)
    assert data["taskTags"] == [
        {"tag": tag, "count": count}
        for tag, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    assert {"math", "reports", "billing", "ops", "x"} == set(counts)


BY_TASK = """
query($filter: TaskRunFilter) {
  runStats(filter: $filter) {
    byTask { task count byState { state count } failureRate duration { p50 p95 p99 } }
  }
}
"""


async def test_run_stats_by_task_details_agree_with_the_rows(
    graphql: GraphQL, stats_plugin: TaskHistoryPlugin
) -> None:
    run_filter = {"queuedAfter": AFTER.isoformat(), "queuedBefore": BEFORE.isoformat()}
    data = await graphql.data(BY_TASK, filter=run_filter)
    runs = [row for row in await rows(stats_plugin) if AFTER <= row.queued <= BEFORE]
    expected = []
    by_task = Counter(row.name for row in runs)
    for name, count in sorted(by_task.items(), key=lambda i: (-i[1], i[0])):
        mine = [row for row in runs if row.name == name]
        states = Counter(row.state for row in mine)
        durations = [
            (row.end - row.start).total_seconds()
            for row in mine
            if row.start and row.end and row.state != "rate_limited"
        ]
        cuts = statistics.quantiles(durations, n=100, method="inclusive")
        ended = states["failure"] + states["success"]
        expected.append(
            {
                "task": name,
                "count": count,
                "byState": state_counts(states),
                "failureRate": pytest.approx(states["failure"] / ended),
                "duration": {
                    "p50": pytest.approx(statistics.median(durations)),
                    "p95": pytest.approx(cuts[94]),
                    "p99": pytest.approx(cuts[98]),
                },
            }
        )
    assert data["runStats"]["byTask"] == expected


async def test_task_names_leave_the_details_null(
    graphql: GraphQL, stats_plugin: TaskHistoryPlugin
) -> None:
    data = await graphql.data("{ taskNames { task failureRate byState { count } } }")
    assert data["taskNames"]
    assert {(t["failureRate"], t["byState"]) for t in data["taskNames"]} == {
        (None, None)
    }


async def test_run_stats_series_percentiles_agree_with_the_rows(
    graphql: GraphQL, stats_plugin: TaskHistoryPlugin
) -> None:
    query = """query($filter: TaskRunFilter) {
      runStats(filter: $filter, bucket: HOUR) { series { start duration { p50 p99 } } }
    }"""
    run_filter = {"queuedAfter": AFTER.isoformat(), "queuedBefore": BEFORE.isoformat()}
    series = (await graphql.data(query, filter=run_filter))["runStats"]["series"]
    runs = [row for row in await rows(stats_plugin) if AFTER <= row.queued <= BEFORE]
    expected = []
    for hour in hours(AFTER, BEFORE):
        durations = [
            (row.end - row.start).total_seconds()
            for row in runs
            if hour <= row.queued < hour + timedelta(hours=1)
            and row.start
            and row.end
            and row.state != "rate_limited"
        ]
        duration = {"p50": None, "p99": None}
        if len(durations) > 1:
            cuts = statistics.quantiles(durations, n=100, method="inclusive")
            duration = {
                "p50": pytest.approx(statistics.median(durations)),
                "p99": pytest.approx(cuts[98]),
            }
        expected.append({"start": hour.isoformat(), "duration": duration})
    assert series == expected
    assert sum(point["duration"]["p50"] is not None for point in series) >= 3
