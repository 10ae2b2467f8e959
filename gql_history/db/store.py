"""The history table through an async engine: every SQL access the history
makes goes through ``HistoryStore``.

Statements are built by their own modules (``keyset``, ``upserts``,
``retention``, ``ddl``); reads run on the driver through ``statements``.
"""

from __future__ import annotations

import json
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..core.cursor import Position
from ..core.filters import RunFilter
from ..core.paging import Page, RunOrder
from ..core.records import RUN_FIELDS, RunRecord
from ..core.tasks import LiveTasks
from ..core.text import storable
from ..errors import SearchUnavailableError
from . import ddl
from .conditions import BoundFilter, bound_filter, filter_condition, text_array
from .engine import create_engine
from .keyset import children_statement, page_statement, start_params
from .liveness import (
    heartbeat_statement,
    lost_runs_statement,
    silent_queued_statement,
    try_reap_lock,
)
from .notifications import channel_for
from .retention import horizon_statement, prune_statement
from .statements import CompiledReads, RunRow, run_records
from .tables import TRIGRAM_EXTENSION, history_table
from .upserts import notify_changed, write_runs

#: The columns the reaper writes: a table lacking one is not reaped.
_REAPED_COLUMNS = frozenset(("worker", "xact_id", "xact_horizon"))


class HistoryStore:
    """SQL access to one history table through an async engine.

    ``live_tasks`` give runs stored without tags the tags of their live task,
    when read and when filtered by tag.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        table: sa.Table,
        *,
        live_tasks: LiveTasks | None = None,
    ) -> None:
        self.engine = engine
        self.table = table
        self.live_tasks = live_tasks or LiveTasks()
        self.reads = CompiledReads(engine)
        self._present: frozenset[str] | None = None
        self._searchable: bool | None = None
        self._select_runs: tuple[frozenset[str], sa.Select[Any]] | None = None

    @property
    def channel(self) -> str:
        """The ``NOTIFY`` channel announcing this table's committed changes."""
        return channel_for(self.table)

    # Schema

    async def create_tables(self) -> None:
        """Create the table, its enum type and indexes where missing."""
        await ddl.create_tables(self.engine, self.table)
        self._present = self._searchable = None

    async def upgrade_tables(self) -> list[str]:
        """Add gql_history's columns and indexes to a TaskDbPlugin table.

        Idempotent; returns the names of the columns it added.
        """
        added = await ddl.upgrade_tables(self.engine, self.table)
        self._present = self._searchable = None
        return added

    async def present_columns(self) -> frozenset[str]:
        """The columns the table has in the database (cached)."""
        if self._present is None:
            self._present = await ddl.column_names(self.engine, self.table)
        return self._present

    async def check_search(self, run_filter: RunFilter | None) -> None:
        """Raise ``SearchUnavailableError`` if ``run_filter`` searches text
        and the database lacks the trigram extension (checked once)."""
        if run_filter is None or not run_filter.searches_text():
            return
        if self._searchable is None:
            self._searchable = await ddl.has_extension(self.engine, TRIGRAM_EXTENSION)
        if not self._searchable:
            raise SearchUnavailableError()

    # Writes

    async def upsert(self, records: Sequence[RunRecord]) -> None:
        """Write runs in one statement; a row never moves back in its progress.

        The same transaction notifies the rows it changed, so live subscribers
        hear of every committed change and of nothing else.
        """
        if not records:
            return
        async with self.engine.begin() as conn:
            await self.write(conn, records)

    async def write(self, conn: AsyncConnection, records: Sequence[RunRecord]) -> None:
        """``upsert``'s work in ``conn``'s transaction (its caller commits)."""
        await write_runs(conn, self.table, await self.present_columns(), records)

    async def prune(
        self,
        older_than: datetime,
        *,
        states: Collection[TaskState] | None = None,
        limit: int = 1000,
    ) -> int:
        """Delete up to ``limit`` runs queued before ``older_than``, oldest
        first, in one short transaction; return how many it deleted.

        Callers repeat it until it deletes fewer than ``limit``: a bounded
        batch never holds long locks, and an interrupted prune keeps every
        batch already committed.
        """
        statement = prune_statement(self.table, older_than, states=states, limit=limit)
        has_horizon = "worker" in await self.present_columns()
        async with self.engine.begin() as conn:
            if has_horizon:  # with the deletes: no run before it is inserted again
                await conn.execute(horizon_statement(self.table, older_than))
            result = await conn.execute(statement)
        return int(result.rowcount)

    # Workers

    async def heartbeat(self, worker: str) -> None:
        """Record that the process ``worker`` is alive now."""
        if "worker" in await self.present_columns():
            async with self.engine.begin() as conn:
                await conn.execute(heartbeat_statement(self.table, worker))

    async def reap(
        self,
        *,
        reaper: str,
        grace: float,
        timeout_margin: float,
        timeouts: Mapping[str, float],
        limit: int = 1000,
        waiting: Callable[[Collection[str]], Awaitable[Collection[str]]] | None = None,
    ) -> int | None:
        """Mark ``interrupted`` up to ``limit`` runs that look live but are
        lost: their worker silent for over ``grace`` seconds, or running past
        their task's timeout (``timeouts``, by task) plus ``timeout_margin``.
        ``waiting``, given queued run ids, says which of them still wait on
        the broker's queue (not lost: the dead process only queued them).
        How many it marked; None when another process is reaping."""
        if not await self.present_columns() >= _REAPED_COLUMNS:
            return 0
        async with self.engine.begin() as conn:
            if not await try_reap_lock(conn, self.table):
                return None
            lost_queued: set[str] | None = None
            if waiting is not None:
                silent = silent_queued_statement(self.table, grace=grace)
                candidates = set((await conn.scalars(silent)).all())
                held = set(await waiting(candidates)) if candidates else set()
                lost_queued = candidates - held
            statement = lost_runs_statement(
                self.table,
                reaper=reaper,
                grace=grace,
                timeout_margin=timeout_margin,
                timeouts=timeouts,
                limit=limit,
                lost_queued=lost_queued,
            )
            changed = (await conn.execute(statement)).all()
            await notify_changed(conn, self.table, changed)
        return len(changed)

    # Reads

    async def get(
        self, run_id: str, run_filter: RunFilter | None = None
    ) -> RunRecord | None:
        """The run with ``run_id`` if ``run_filter`` matches it, or ``None``."""
        runs = await self.get_many([run_id], run_filter)
        return runs[0] if runs else None

    async def get_many(
        self, run_ids: Collection[str], run_filter: RunFilter | None = None
    ) -> list[RunRecord]:
        """The runs with any of ``run_ids`` that ``run_filter`` matches, in no
        particular order."""
        run_ids = [run_id for run_id in run_ids if storable(run_id)]  # others: none
        if not run_ids:
            return []
        bound = await self.bound(run_filter)
        select = await self.select_runs()
        ids = self.table.c.id
        read = self.reads.get(
            ("runs", bound.shape),
            lambda: select.where(
                ids == sa.any_(sa.bindparam("ids", type_=ARRAY(ids.type))),
                bound.condition,
            ),
        )
        rows = await self.reads.fetch(read, {**bound.values, "ids": list(run_ids)})
        return run_records(rows, self.live_tasks)

    async def count(self, run_filter: RunFilter | None = None) -> int:
        """How many runs ``run_filter`` matches."""
        bound = await self.bound(run_filter)
        read = self.reads.get(
            ("count", bound.shape),
            lambda: (
                sa.select(sa.func.count())
                .select_from(self.table)
                .where(bound.condition)
            ),
        )
        rows = await self.reads.fetch(read, bound.values)
        return int(rows[0][0])

    async def count_up_to(self, run_filter: RunFilter | None, limit: int) -> int:
        """How many runs ``run_filter`` matches, counting no further than
        ``limit``: reads at most ``limit`` index entries, however many match."""
        bound = await self.bound(run_filter)
        read = self.reads.get(
            ("count_up_to", bound.shape),
            lambda: sa.select(sa.func.count()).select_from(
                sa.select(sa.literal_column("1").label("one"))
                .select_from(self.table)
                .where(bound.condition)
                .limit(sa.bindparam("limit", type_=sa.Integer))
                .subquery("matching")
            ),
        )
        rows = await self.reads.fetch(read, {**bound.values, "limit": limit})
        return int(rows[0][0])

    async def approximate_count(self, run_filter: RunFilter | None) -> int:
        """The planner's estimate of how many runs ``run_filter`` matches:
        ``EXPLAIN`` of the filtered select, its plan's rows (no row is read)."""
        bound = await self.bound(run_filter)
        read = self.reads.get(
            ("estimate", bound.shape),
            lambda: (
                sa.select(sa.literal_column("1"))
                .select_from(self.table)
                .where(bound.condition)
            ),
        )
        explain = replace(read, sql=f"EXPLAIN (FORMAT JSON) {read.sql}")
        rows = await self.reads.fetch(explain, bound.values)
        plan = rows[0][0]
        [top] = json.loads(plan) if isinstance(plan, str) else plan
        return int(top["Plan"]["Plan Rows"])

    async def page(
        self,
        run_filter: RunFilter | None,
        *,
        order: RunOrder = RunOrder.QUEUED_DESC,
        limit: int,
        start: Position | None = None,
        backward: bool = False,
        probe_before: bool = False,
    ) -> Page:
        """Up to ``limit`` runs strictly past ``start`` in one SQL statement.

        Read forward in ``order``, or backward from ``start`` when
        ``backward`` (the runs still come back in ``order``). With
        ``probe_before`` the same statement checks for a run at or before
        ``start``, which a Relay connection needs for its other page flag.
        """
        bound = await self.bound(run_filter)
        select = await self.select_runs()
        probe = start is not None and probe_before
        read = self.reads.get(
            ("page", bound.shape, order, backward, start is not None, probe, limit),
            lambda: page_statement(
                self.table,
                select,
                bound.condition,
                order=order,
                backward=backward,
                has_start=start is not None,
                probe=probe,
                rows=limit + 1,
            ),
        )
        params = {**bound.values, **start_params(start)}
        rows: Sequence[RunRow] = await self.reads.fetch(read, params)
        has_before = False
        if probe:
            has_before = bool(rows[0]._has_before)
            rows = [row for row in rows if row.id is not None]
        return _page(run_records(rows, self.live_tasks), limit, backward, has_before)

    # Lineage, batched: one statement for many parents (DataLoaders use these)

    async def children_pages(
        self,
        parent_ids: Collection[str],
        *,
        limit: int,
        start: Position | None = None,
        backward: bool = False,
        probe_before: bool = False,
        run_filter: RunFilter | None = None,
    ) -> dict[str, Page]:
        """For each of ``parent_ids``, the page ``page`` would return for
        ``RunFilter(from_run_id=parent)`` (and ``run_filter``) in
        ``QUEUED_ASC`` order, all in one SQL statement."""
        ids = list(dict.fromkeys(parent_ids))
        found: dict[str, list[RunRow]] = {parent: [] for parent in ids}
        has_before = dict.fromkeys(ids, False)
        probe = start is not None and probe_before
        present = await self.present_columns()
        if ids and "from_run_id" in present:
            bound = await self.bound(run_filter)
            select = await self.select_runs()
            read = self.reads.get(
                ("children", bound.shape, backward, start is not None, probe, limit),
                lambda: children_statement(
                    self.table,
                    select,
                    bound.condition,
                    descending=backward,
                    has_start=start is not None,
                    probe=probe,
                    rows=limit + 1,
                ),
            )
            params = {**bound.values, "parent_ids": ids, **start_params(start)}
            for row in await self.reads.fetch(read, params):
                if row.id is not None:
                    found[row.parent_id].append(row)
                if probe:
                    has_before[row.parent_id] = bool(row._has_before)
        return {
            parent: _page(
                run_records(rows, self.live_tasks), limit, backward, has_before[parent]
            )
            for parent, rows in found.items()
        }

    async def count_children(
        self, parent_ids: Collection[str], run_filter: RunFilter | None = None
    ) -> dict[str, int]:
        """How many runs ``run_filter`` matches each of ``parent_ids`` queued,
        in one SQL statement."""
        counts = dict.fromkeys(parent_ids, 0)
        if not counts or "from_run_id" not in await self.present_columns():
            return counts
        c = self.table.c
        query = (
            sa.select(c.from_run_id, sa.func.count())
            .where(
                c.from_run_id == sa.any_(text_array(counts)),
                await self.condition(run_filter),
            )
            .group_by(c.from_run_id)
        )
        for parent, count in await self.fetch(query):
            counts[parent] = int(count)
        return counts

    # Building blocks of the other readers (statistics, live changes)

    async def condition(self, run_filter: RunFilter | None) -> sa.ColumnElement[bool]:
        """The SQL condition for ``run_filter`` on this table."""
        await self.check_search(run_filter)
        return filter_condition(
            self.table,
            run_filter,
            present=await self.present_columns(),
            live_tasks=self.live_tasks,
        )

    async def bound(self, run_filter: RunFilter | None) -> BoundFilter:
        """``condition`` with named parameters, and the shape of its SQL on
        this table (the columns it has are part of it)."""
        await self.check_search(run_filter)
        present = await self.present_columns()
        bound = bound_filter(
            self.table, run_filter, present=present, live_tasks=self.live_tasks
        )
        return replace(bound, shape=(present, *bound.shape))

    async def select_runs(self) -> sa.Select[Any]:
        """A select of every run field, NULL for those the table lacks
        (built once per set of columns: selects are immutable)."""
        present = await self.present_columns()
        if self._select_runs is None or self._select_runs[0] is not present:
            c = self.table.c
            select = sa.select(
                *(
                    c[name] if name in present else sa.null().label(name)
                    for name in RUN_FIELDS
                )
            )
            self._select_runs = (present, select)
        return self._select_runs[1]

    async def fetch(self, query: sa.Select[Any]) -> Sequence[RunRow]:
        """The rows of a statement read once, outside any transaction."""
        return await self.reads.fetch_statement(query)


def _page(runs: list[RunRecord], limit: int, backward: bool, has_before: bool) -> Page:
    """The page of ``runs`` read with one row more than ``limit``."""
    has_more = len(runs) > limit
    runs = runs[:limit]
    if backward:
        runs.reverse()
    return Page(runs=runs, has_more=has_more, has_before=has_before)


@asynccontextmanager
async def open_store(url: str, table_name: str) -> AsyncIterator[HistoryStore]:
    """A store of ``table_name`` at ``url`` on an engine of its own, disposed
    of on the way out: for commands that read or change the table once."""
    engine = create_engine(url)
    try:
        yield HistoryStore(engine, history_table(sa.MetaData(), table_name))
    finally:
        await engine.dispose()
