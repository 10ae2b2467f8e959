"""The SQL reads of live subscriptions: the rows changed from one position of
the stream to the next (``positions``), under subscribers' filters.

Which rows a position has not sent: those whose last writer (``xact_id``) its
snapshot did not see, at or above its ``xmax`` or in its in-progress list,
two index ranges; those a later snapshot saw are below its ``xmax`` and not
in its list. Rows go out in ``(xact_id, id)`` order, the ids compared
byte-wise (``COLLATE "C"``), as Python compares them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from ..core.filters import as_utc
from ..core.records import RunRecord
from ..db.conditions import text_array
from ..db.notifications import Snapshot
from ..db.statements import CompiledReads, run_records
from ..db.store import HistoryStore
from .positions import StreamPosition

#: A change's key: its writing transaction, then its run id.
ChangeKey = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Changed:
    """A changed run as a read found it, and the filters it matches."""

    run: RunRecord
    xact_id: int
    matches: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """Rows changed past a position, as of ``snapshot``, in key order."""

    snapshot: Snapshot
    """What the read saw (the upper bound it was given, if one was)."""
    changes: list[Changed]
    complete: bool
    """Whether these are all of them (else read on after the last)."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The keys of the runs a subscription replays, as one statement saw them."""

    keys: list[ChangeKey]
    snapshot: Snapshot


class ChangeReader:
    """Reads what live subscriptions send, through ``store``'s table and filters.

    A subscriber's filter is applied by PostgreSQL, exactly as for ``runs``.
    """

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.reads = CompiledReads(store.engine, size=64)
        """The compiled window reads, by filters and window shape."""

    async def step(
        self,
        conditions: Sequence[sa.ColumnElement[bool]],
        lower: StreamPosition,
        *,
        upper: Snapshot | None = None,
        after: ChangeKey | None = None,
        limit: int,
    ) -> Step:
        """Up to ``limit`` rows matching any of ``conditions`` that ``lower``
        has not sent, visible in ``upper`` (the read's own snapshot when not
        given), after the key ``after``; each with which conditions it matches."""
        c = self.store.table.c
        select_runs = await self.store.select_runs()

        def rows() -> sa.Select[Any]:
            flags = [
                sa.func.coalesce(condition, sa.false()).label(f"_match_{index}")
                for index, condition in enumerate(conditions)
            ]
            matching = select_runs.add_columns(c.xact_id.label("_xact_id"), *flags)
            return matching.where(sa.or_(*conditions))

        key = ("step", select_runs, tuple(conditions))
        snapshot, found = await self._read(key, rows, lower, upper, after, limit)
        width = len(conditions)
        runs = run_records(
            [row[1 : -width - 1] for row in found], self.store.live_tasks
        )
        changes = [
            Changed(run, row[-width - 1], tuple(bool(flag) for flag in row[-width:]))
            for run, row in zip(runs, found, strict=True)
        ]
        return Step(upper or snapshot, changes, len(found) < limit)

    async def replay(
        self, condition: sa.ColumnElement[bool], lower: StreamPosition, limit: int
    ) -> Replay:
        """The keys of up to ``limit`` changes of runs matching ``condition``
        that ``lower`` has not sent, and the snapshot that found them."""
        c = self.store.table.c

        def keys() -> sa.Select[Any]:
            return sa.select(c.xact_id.label("_xact_id"), c.id).where(condition)

        key = ("replay", condition)
        snapshot, found = await self._read(key, keys, lower, None, None, limit)
        return Replay([(row[1], row[2]) for row in found], snapshot)

    async def read(
        self, run_ids: Collection[str], condition: sa.ColumnElement[bool]
    ) -> dict[str, Changed]:
        """The runs among ``run_ids`` matching ``condition`` now, by id."""
        if not run_ids:
            return {}
        c = self.store.table.c
        query = (
            (await self.store.select_runs())
            .add_columns(c.xact_id.label("_xact_id"))
            .where(c.id == sa.any_(text_array(run_ids)), condition)
        )
        rows = await self.store.fetch(query)
        runs = run_records(rows, self.store.live_tasks)
        return {
            run.id: Changed(run, row[-1], (True,))
            for run, row in zip(runs, rows, strict=True)
        }

    async def since(self, since: datetime) -> StreamPosition:
        """A position covering only transactions that had ended by ``since``:
        the database's snapshot if ``since`` is not past yet, else the
        horizon written with the last write at or before it (every
        transaction below it had ended by then; all of them are left when
        there is no such write)."""
        c = self.store.table.c
        when = as_utc(since)
        horizon = (
            sa.select(c.xact_horizon)
            .where(c.updated <= when, c.xact_horizon.is_not(None))
            .order_by(c.updated.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = sa.select(
            _current_snapshot().scalar_subquery(),
            sa.func.clock_timestamp() <= when,
            horizon,
        )
        [(snapshot, ahead, below)] = await self.store.fetch(query)
        if ahead:  # the clock is read after the snapshot is taken
            return StreamPosition(Snapshot.parse(snapshot))
        return StreamPosition.below(int(below or 1))

    async def snapshot(self) -> Snapshot:
        """The database's snapshot now."""
        rows = await self.store.fetch(_current_snapshot())
        return Snapshot.parse(rows[0][0])

    async def _read(
        self,
        key: Hashable,
        rows: Callable[[], sa.Select[Any]],
        lower: StreamPosition,
        upper: Snapshot | None,
        after: ChangeKey | None,
        limit: int,
    ) -> tuple[Snapshot, list[tuple[Any, ...]]]:
        """The rows of ``rows()`` in the window, in key order, up to
        ``limit``, each after the snapshot of the statement reading them
        (first of every row). The statement is compiled once per ``key`` and
        window shape (the window's values are parameters): the hub reads on
        every change."""
        shape = (len(lower.partial), upper is not None, after is not None, limit)

        def build() -> sa.Select[Any]:
            c = self.store.table.c
            snap = _current_snapshot().subquery("snap")
            window = rows().where(*_window(c, *shape[:3]))
            changed = (
                window.order_by(c.xact_id, _byte_wise(c.id)).limit(limit).lateral()
            )
            return (
                sa.select(snap.c.snapshot, *changed.c)
                .select_from(snap.outerjoin(changed, sa.true()))
                .order_by(changed.c._xact_id, _byte_wise(changed.c.id))
            )

        read = self.reads.get((key, shape), build)
        params = {**read.values, **_window_values(lower, upper, after)}
        found = await self.reads.fetch(read, params)
        snapshot = Snapshot.parse(found[0][0])
        return snapshot, [tuple(row) for row in found if row[1] is not None]


def _current_snapshot() -> sa.Select[Any]:
    return sa.select(sa.cast(sa.func.pg_current_snapshot(), sa.Text).label("snapshot"))


def _byte_wise(column: Any) -> sa.ColumnElement[str]:
    return sa.collate(column, "C")


def _window(
    c: Any, partial: int, upper: bool, after: bool
) -> list[sa.ColumnElement[bool]]:
    """Conditions on rows a position has not sent (with ``partial`` part-sent
    transactions) that a snapshot saw (if ``upper``), after a key (if
    ``after``): the parameters ``_window_values`` gives."""
    xids = ARRAY(sa.BigInteger)
    where = [
        sa.or_(
            c.xact_id >= sa.bindparam("lower_xmax", type_=sa.BigInteger),
            c.xact_id == sa.any_(sa.bindparam("lower_xip", type_=xids)),
        )
    ]
    for index in range(partial):
        xact_id = sa.bindparam(f"partial_xid_{index}", type_=sa.BigInteger)
        run_id = sa.bindparam(f"partial_id_{index}", type_=sa.Text)
        where.append(sa.not_(sa.and_(c.xact_id == xact_id, _byte_wise(c.id) <= run_id)))
    if upper:
        where.append(c.xact_id < sa.bindparam("upper_xmax", type_=sa.BigInteger))
        where.append(c.xact_id != sa.all_(sa.bindparam("upper_xip", type_=xids)))
    if after:
        xact_id = sa.bindparam("after_xid", type_=sa.BigInteger)
        run_id = sa.bindparam("after_id", type_=sa.Text)
        where.append(
            sa.or_(
                c.xact_id > xact_id,
                sa.and_(c.xact_id == xact_id, _byte_wise(c.id) > run_id),
            )
        )
    return where


def _window_values(
    lower: StreamPosition, upper: Snapshot | None, after: ChangeKey | None
) -> dict[str, Any]:
    """The parameters of ``_window`` for these bounds."""
    values: dict[str, Any] = {
        "lower_xmax": lower.snapshot.xmax,
        "lower_xip": sorted(lower.snapshot.in_progress),
    }
    for index, (xact_id, run_id) in enumerate(lower.partial):
        values[f"partial_xid_{index}"] = xact_id
        values[f"partial_id_{index}"] = run_id
    if upper is not None:
        values["upper_xmax"] = upper.xmax
        values["upper_xip"] = sorted(upper.in_progress)
    if after is not None:
        values["after_xid"], values["after_id"] = after
    return values
