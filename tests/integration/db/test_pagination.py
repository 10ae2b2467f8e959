from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from itertools import count

import pytest
import sqlalchemy as sa
from fluid.scheduler import TaskState
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_history import TaskHistoryPlugin, TaskHistoryQuery
from gql_history.core.paging import RunOrder
from gql_history.db.engine import create_engine
from gql_history.db.store import HistoryStore
from tests.factories import T0, run_record

TASKS = ("add", "report", "slow")
STATES = (TaskState.success, TaskState.failure, TaskState.queued)
#: Tie groups: hundreds of runs share some timestamps.
GROUP_SIZES = (300, 1, 40, 7, 250, 1, 1, 90, 2, 120)
_new_ids = count()


@pytest.fixture(scope="module")
async def plugin(engine: AsyncEngine, fresh_table: str) -> TaskHistoryPlugin:
    plugin = TaskHistoryPlugin(engine, table_name=fresh_table)
    await plugin.create_tables()
    rng = random.Random(7)
    records = []
    for group, size in enumerate(GROUP_SIZES):
        for _ in range(size):
            records.append(
                run_record(
                    f"{rng.getrandbits(64):016x}",
                    name=rng.choice(TASKS),
                    state=rng.choice(STATES),
                    queued=T0 + timedelta(seconds=group),
                    params={"n": rng.randrange(3)},
                )
            )
    await plugin.store.upsert(records)
    return plugin


async def truth(plugin: TaskHistoryPlugin, query: TaskHistoryQuery) -> list[str]:
    """The ids ``query`` matches, in order, straight from SQL."""
    table = plugin.table
    select = (
        sa.select(table.c.id)
        .where(await plugin.store.condition(query.run_filter()))
        .order_by(table.c.queued.desc(), table.c.id.desc())
    )
    async with plugin.engine.connect() as conn:
        return list((await conn.execute(select)).scalars())


async def walk(
    plugin: TaskHistoryPlugin, query: TaskHistoryQuery, insert_during: bool
) -> list[str]:
    seen: list[str] = []
    page = await plugin.get_history(query)
    while True:
        seen.extend(run.id for run in page.data)
        if not page.cursor:
            return seen
        if insert_during:
            await insert_among_ties(plugin)
        page = await plugin.get_history(TaskHistoryQuery(cursor=page.cursor))
        assert len(seen) <= 2000, "the walk does not end"


async def insert_among_ties(plugin: TaskHistoryPlugin) -> None:
    group = random.randrange(len(GROUP_SIZES))
    await plugin.store.upsert(
        [
            run_record(
                f"new-{next(_new_ids):08d}",
                name="inserted",
                queued=T0 + timedelta(seconds=group),
            )
        ]
    )


filters = st.fixed_dictionaries(
    {},
    optional={
        "task": st.lists(st.sampled_from(TASKS), min_size=1, max_size=2),
        "state": st.lists(st.sampled_from(STATES), min_size=1, max_size=2),
        "params": st.sampled_from([{"n": 0}, {"n": 1}]),
        "start": st.integers(0, 9).map(lambda s: T0 + timedelta(seconds=s)),
    },
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(limit=st.integers(1, 120), query=filters, insert_during=st.booleans())
async def test_history_walk_returns_each_run_once_in_order(
    plugin: TaskHistoryPlugin,
    limit: int,
    query: dict[str, object],
    insert_during: bool,
) -> None:
    q = TaskHistoryQuery.model_validate({**query, "limit": limit})
    expected = await truth(plugin, q)
    try:
        seen = await walk(plugin, q, insert_during)
    finally:
        async with plugin.engine.begin() as conn:
            table = plugin.table
            await conn.execute(table.delete().where(table.c.name == "inserted"))
    originals = set(expected)
    assert [run_id for run_id in seen if run_id in originals] == expected
    assert max(Counter(seen).values(), default=1) == 1


async def test_history_walk_at_page_size_25_over_a_tie_of_300_ends(
    plugin: TaskHistoryPlugin,
) -> None:
    q = TaskHistoryQuery(task=list(TASKS), start=T0, end=T0, limit=25)
    assert await walk(plugin, q, False) == await truth(plugin, q)
    assert len(await truth(plugin, q)) == 300


async def test_page_reads_reuse_one_generic_plan_per_page_size(
    database_url: str, plugin: TaskHistoryPlugin
) -> None:
    """Pages of one size from many starts are planned once, not on every read
    (PostgreSQL counts a prepared statement's plans)."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    store = HistoryStore(engine, plugin.table)
    try:
        order = RunOrder.QUEUED_DESC
        page = await store.page(None, order=order, limit=25)
        for _ in range(12):
            start = order.position(page.runs[-1])
            page = await store.page(None, order=order, limit=25, start=start)
        async with engine.connect() as conn:
            plans = (
                await conn.execute(
                    sa.text(
                        "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                        " WHERE statement LIKE '%LIMIT 26%' AND statement LIKE :table"
                    ),
                    {"table": f"%FROM {plugin.table.name} %"},
                )
            ).all()
    finally:
        await engine.dispose()
    # the first page's statement, then the one past a start, read 12 times
    assert sorted(plans, key=sum)[-1] == (7, 5)
