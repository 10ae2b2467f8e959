"""The history table through an async engine: its schema, pages and lineage
reads (the hot ones compiled once per shape and run on the driver, see
``statements``), batched writes (the statement is ``upserts``') and retention."""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .cursor import Position
from .filters import (
    BoundFilter,
    RunFilter,
    TaskNamesByTags,
    bound_filter,
    filter_condition,
)
from .notifications import channel_for, notify_statement, payload_chunks, version_of
from .statements import CompiledReads, RunRow
from .tables import LEGACY_COLUMNS, extension_columns
from .upserts import RunRecord, upsert_statement

RUN_COLUMNS = (
    "id",
    "name",
    "priority",
    "state",
    "queued",
    "start",
    "end",
    "params",
    "from_run_id",
    "root_run_id",
    "retry_attempt",
    "error_type",
    "error_message",
    "tags",
    "updated",
)


#: A row of run columns, from a compiled read or a SQLAlchemy statement; both
#: read by position, by attribute, and name their columns in ``_fields``.
AnyRow = RunRow | sa.Row[Any]


class RunOrder(enum.StrEnum):
    """The keyset orders a page can be read in, over the unique ``(queued, id)``."""

    QUEUED_DESC = "QUEUED_DESC"
    QUEUED_ASC = "QUEUED_ASC"


@dataclass(frozen=True, slots=True)
class Page:
    """Rows of one keyset page, in the order asked for."""

    rows: Sequence[AnyRow]
    has_more: bool
    """More rows follow the page in the direction it was read."""
    has_before: bool
    """Rows precede the page's starting position (only probed when asked)."""


class HistoryStore:
    """SQL access to one history table through an async engine."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: sa.Table,
        *,
        task_names_by_tags: TaskNamesByTags | None = None,
    ) -> None:
        self.engine = engine
        self.table = table
        self.task_names_by_tags = task_names_by_tags
        self._present: frozenset[str] | None = None
        self._select_runs: tuple[frozenset[str], sa.Select[Any]] | None = None
        self.reads = CompiledReads(engine)
        # Reads need no transaction: autocommit saves a BEGIN and a ROLLBACK.
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")

    # Schema

    async def create_tables(self) -> None:
        """Create the table, its enum type and indexes where missing."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self.table.create, checkfirst=True)
            await self._create_indexes(conn)
        self._present = None

    async def upgrade_tables(self) -> list[str]:
        """Add gql_history's columns and indexes to a TaskDbPlugin table.

        Idempotent; returns the names of the columns it added.
        """
        await self.create_tables()
        present = await self.present_columns()
        missing = [c for c in extension_columns(self.table) if c.name not in present]
        async with self.engine.begin() as conn:
            for column in missing:
                ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
                await conn.execute(
                    sa.text(
                        f"ALTER TABLE {self._quoted_name(conn)} "
                        f"ADD COLUMN IF NOT EXISTS {ddl}"
                    )
                )
            await self._create_indexes(conn)
        self._present = None
        return [c.name for c in missing]

    async def present_columns(self) -> frozenset[str]:
        """The columns the table has in the database (cached)."""
        if self._present is None:
            async with self.engine.connect() as conn:
                names = await conn.run_sync(
                    lambda sync_conn: [
                        column["name"]
                        for column in sa.inspect(sync_conn).get_columns(
                            self.table.name, schema=self.table.schema
                        )
                    ]
                )
            self._present = frozenset(names)
        return self._present

    async def _create_indexes(self, conn: AsyncConnection) -> None:
        present = set(
            await conn.run_sync(
                lambda sync_conn: [
                    c["name"]
                    for c in sa.inspect(sync_conn).get_columns(
                        self.table.name, schema=self.table.schema
                    )
                ]
            )
        )
        for index in self.table.indexes:
            if {c.name for c in index.columns} <= present:
                await conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))

    def _quoted_name(self, conn: AsyncConnection) -> str:
        preparer = conn.dialect.identifier_preparer
        return preparer.format_table(self.table)

    # Writes

    async def upsert(self, records: Sequence[RunRecord]) -> None:
        """Write runs in one statement; a row never moves back in its progress.

        The same transaction notifies the rows it changed (see ``write``), so
        live subscribers hear of every committed change and of nothing else.
        """
        if not records:
            return
        async with self.engine.begin() as conn:
            await self.write(conn, records)

    # Reads

    async def get(self, run_id: str) -> RunRow | None:
        """The run with ``run_id``, or ``None``."""
        rows = await self.get_many([run_id])
        return rows[0] if rows else None

    async def get_many(self, run_ids: Collection[str]) -> Sequence[RunRow]:
        """The runs with any of ``run_ids``, in no particular order."""
        if not run_ids:
            return []
        select = await self.select_runs()
        ids = self.table.c.id
        read = self.reads.get(
            ("runs", await self.present_columns()),
            lambda: select.where(
                ids == sa.any_(sa.bindparam("ids", type_=ARRAY(ids.type)))
            ),
        )
        return await self.reads.fetch(read, {"ids": list(run_ids)})

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
        ``backward`` (the rows still come back in ``order``). With
        ``probe_before`` the same statement checks for a row at or before
        ``start``, which a Relay connection needs for its other page flag.
        """
        descending = (order is RunOrder.QUEUED_DESC) != backward
        bound = await self.bound(run_filter)
        select = await self.select_runs()
        probe = start is not None and probe_before
        read = self.reads.get(
            ("page", bound.shape, descending, start is not None, probe),
            lambda: self._page_statement(
                select, bound.condition, descending, start is not None, probe
            ),
        )
        params = {**bound.values, "limit": limit + 1, **_start_params(start)}
        rows: list[Any] = list(await self.reads.fetch(read, params))
        has_before = False
        if probe:
            has_before = bool(rows[0]._has_before)
            rows = [row for row in rows if row.id is not None]
        has_more = len(rows) > limit
        rows = rows[:limit]
        if backward:
            rows.reverse()
        return Page(rows=rows, has_more=has_more, has_before=has_before)

    def _page_statement(
        self,
        select: sa.Select[Any],
        condition: sa.ColumnElement[bool],
        descending: bool,
        has_start: bool,
        probe: bool,
    ) -> sa.Select[Any]:
        """The statement of a page, its start and limit left as parameters.

        With ``probe``, the probe for a row at or before the start is the left
        side of a lateral join, so the statement returns one row (of NULLs but
        for the probe) even when the page is empty.
        """
        query = select.where(condition)
        if has_start:
            query = query.where(self._past(descending, inclusive=False))
        query = query.order_by(*self._order_by(descending)).limit(_LIMIT)
        if not probe:
            return query
        before = self._past(not descending, inclusive=True)
        probe_query = sa.select(
            sa.exists(sa.select(self.table.c.id).where(condition, before)).label(
                "_has_before"
            )
        ).subquery("probe")
        page = query.subquery("page").lateral()
        return (
            sa.select(*page.c, probe_query.c._has_before)
            .select_from(probe_query.outerjoin(page, sa.true()))
            .order_by(*self._order_by(descending, page.c))
        )

    # Lineage, batched: one statement for many parents (DataLoaders use these)

    async def children_pages(
        self,
        parent_ids: Collection[str],
        *,
        limit: int,
        start: Position | None = None,
        backward: bool = False,
        probe_before: bool = False,
    ) -> dict[str, Page]:
        """For each of ``parent_ids``, the page ``page`` would return for
        ``RunFilter(from_run_id=parent)`` in ``QUEUED_ASC`` order, all in one
        SQL statement: a lateral join reads each parent's page from the
        ``(from_run_id, queued, id)`` index."""
        ids = list(dict.fromkeys(parent_ids))
        found: dict[str, list[AnyRow]] = {parent: [] for parent in ids}
        has_before = dict.fromkeys(ids, False)
        probe = start is not None and probe_before
        if ids and "from_run_id" in await self.present_columns():
            query = await self._children_query(ids, limit, start, backward, probe)
            for row in await self.fetch(query, _start_params(start)):
                if row.id is not None:
                    found[row.parent_id].append(row)
                if probe:
                    has_before[row.parent_id] = bool(row._has_before)
        pages = {}
        for parent, rows in found.items():
            has_more = len(rows) > limit
            rows = rows[:limit]
            if backward:
                rows.reverse()
            pages[parent] = Page(rows, has_more=has_more, has_before=has_before[parent])
        return pages

    async def count_children(self, parent_ids: Collection[str]) -> dict[str, int]:
        """How many runs each of ``parent_ids`` queued, in one SQL statement."""
        counts = dict.fromkeys(parent_ids, 0)
        if not counts or "from_run_id" not in await self.present_columns():
            return counts
        c = self.table.c
        query = (
            sa.select(c.from_run_id, sa.func.count())
            .where(c.from_run_id == sa.any_(_text_array(counts)))
            .group_by(c.from_run_id)
        )
        async with self.engine.connect() as conn:
            for parent, count in await conn.execute(query):
                counts[parent] = int(count)
        return counts

    async def _children_query(
        self,
        parent_ids: list[str],
        limit: int,
        start: Position | None,
        backward: bool,
        probe_before: bool,
    ) -> sa.Select[Any]:
        c = self.table.c
        parents = (
            sa.func.unnest(_text_array(parent_ids))
            .table_valued(sa.column("parent_id", sa.Text))
            .render_derived(name="parents")
        )
        descending = backward
        page = (await self.select_runs()).where(c.from_run_id == parents.c.parent_id)
        if start is not None:
            page = page.where(self._past(descending, inclusive=False))
        lateral = (
            page.order_by(*self._order_by(descending)).limit(limit + 1).lateral("page")
        )
        columns: list[Any] = [parents.c.parent_id, *lateral.c]
        if start is not None and probe_before:
            before = self._past(not descending, inclusive=True)
            probe = sa.select(c.id).where(c.from_run_id == parents.c.parent_id, before)
            columns.append(sa.exists(probe).label("_has_before"))
        return (
            sa.select(*columns)
            .select_from(parents.outerjoin(lateral, sa.true()))
            .order_by(parents.c.parent_id, *self._order_by(descending, lateral.c))
        )

    def _past(self, descending: bool, *, inclusive: bool) -> sa.ColumnElement[bool]:
        """Rows after the start position (the ``start_queued`` and ``start_id``
        parameters) when reading ``descending`` (or ascending)."""
        c = self.table.c
        key = sa.tuple_(c.queued, c.id)
        bound = sa.tuple_(
            sa.bindparam("start_queued", type_=c.queued.type),
            sa.bindparam("start_id", type_=c.id.type),
        )
        if descending:
            return key <= bound if inclusive else key < bound
        return key >= bound if inclusive else key > bound

    async def condition(self, run_filter: RunFilter | None) -> sa.ColumnElement[bool]:
        """The SQL condition for ``run_filter`` on this table."""
        return filter_condition(
            self.table,
            run_filter,
            present=await self.present_columns(),
            task_names_by_tags=self.task_names_by_tags,
        )

    async def bound(self, run_filter: RunFilter | None) -> BoundFilter:
        """``condition`` with named parameters, and the shape of its SQL on
        this table (the columns it has are part of it)."""
        present = await self.present_columns()
        bound = bound_filter(
            self.table,
            run_filter,
            present=present,
            task_names_by_tags=self.task_names_by_tags,
        )
        return replace(bound, shape=(present, *bound.shape))

    async def select_runs(self) -> sa.Select[Any]:
        """A select of every run column, NULL for those the table lacks
        (built once per set of columns: selects are immutable)."""
        present = await self.present_columns()
        if self._select_runs is None or self._select_runs[0] is not present:
            c = self.table.c
            select = sa.select(
                *(
                    c[name] if name in present else sa.null().label(name)
                    for name in RUN_COLUMNS
                )
            )
            self._select_runs = (present, select)
        return self._select_runs[1]

    def _order_by(self, descending: bool, c: Any = None) -> tuple[Any, ...]:
        c = self.table.c if c is None else c
        if descending:
            return c.queued.desc(), c.id.desc()
        return c.queued.asc(), c.id.asc()

    async def fetch(
        self, query: sa.Select[Any], params: dict[str, Any] | None = None
    ) -> Sequence[sa.Row[Any]]:
        """The rows of ``query`` with ``params``, read outside any transaction.

        A pooled connection the server dropped (say, on a restart) fails the
        first read after it; that read is retried once on a new connection,
        which is cheaper than pinging every connection on checkout.
        """
        for retry in (False, True):
            try:
                async with self._reader.connect() as conn:
                    result = await conn.execute(query, params)
                    rows: Sequence[sa.Row[Any]] = result.all()
                    return rows
            except DBAPIError as exc:
                if retry or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    # Retention

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
        batch already committed. Rows locked by a concurrent write are
        skipped, left for the next call.
        """
        c = self.table.c
        oldest = (
            sa.select(c.id)
            .where(c.queued < older_than)
            .order_by(c.queued, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if states is not None:
            oldest = oldest.where(c.state.in_(list(states)))
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.delete(self.table).where(c.id.in_(oldest.scalar_subquery()))
            )
        return int(result.rowcount)

    # Change notifications

    @property
    def channel(self) -> str:
        """The ``NOTIFY`` channel announcing this table's committed changes."""
        return channel_for(self.table)

    async def write(self, conn: AsyncConnection, records: Sequence[RunRecord]) -> None:
        """``upsert``'s work in ``conn``'s transaction: one ``INSERT ... ON
        CONFLICT DO UPDATE ... RETURNING``, then, if the progress guard let
        rows through, one statement notifying them. PostgreSQL sends the
        notifications when (and only if) the transaction commits."""
        if not records:
            return
        statement = upsert_statement(self.table, await self.present_columns(), records)
        changed = (await conn.execute(statement)).all()
        if changed:
            runs = sorted(
                ((row.id, row.state.value, version_of(row.updated)) for row in changed),
                key=lambda run: (run[2] or 0, run[0]),
            )
            await conn.execute(
                notify_statement(self.channel), {"chunks": payload_chunks(runs)}
            )


#: A page's row limit, a parameter: pages of every size share a statement.
_LIMIT = sa.bindparam("limit", type_=sa.Integer)


def _start_params(start: Position | None) -> dict[str, Any]:
    """The parameters of ``_past`` for ``start``."""
    if start is None:
        return {}
    return {"start_queued": start.queued, "start_id": start.id}


def _text_array(values: Collection[str]) -> sa.BindParameter[list[str]]:
    """``values`` as one PostgreSQL ``text[]`` parameter, whatever their number,
    so the statement text (and its prepared plan) stays the same."""
    return sa.literal(list(values), ARRAY(sa.Text))


__all__ = ["LEGACY_COLUMNS", "HistoryStore", "Page", "RunOrder"]
