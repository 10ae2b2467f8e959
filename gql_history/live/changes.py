"""The SQL reads of live subscriptions: notified runs under subscribers'
filters, and the runs to replay since a time."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..core.filters import as_utc
from ..core.records import RunRecord
from ..db.conditions import text_array
from ..db.notifications import Snapshot, version_of
from ..db.statements import run_records
from ..db.store import HistoryStore


@dataclass(frozen=True, slots=True)
class Replay:
    """The runs a subscription replays, as one statement saw them."""

    versions: list[tuple[str, int]]
    """``(run id, updated in microseconds)``, oldest change first."""
    snapshot: Snapshot
    """What that statement saw: notified changes it saw are not sent again."""


class ChangeReader:
    """Reads what live subscriptions send, through ``store``'s table and filters.

    A subscriber's filter is applied by PostgreSQL, exactly as for ``runs``.
    """

    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    async def read(
        self,
        run_ids: Collection[str],
        conditions: Sequence[sa.ColumnElement[bool]],
    ) -> list[tuple[RunRecord, tuple[bool, ...]]]:
        """The runs among ``run_ids`` matching any of ``conditions``, each with
        which of them it matches: one statement for every subscriber."""
        if not run_ids or not conditions:
            return []
        flags = [
            sa.func.coalesce(condition, sa.false()).label(f"_match_{index}")
            for index, condition in enumerate(conditions)
        ]
        query = (
            (await self.store.select_runs())
            .add_columns(*flags)
            .where(self.store.table.c.id == sa.any_(text_array(run_ids)))
            .where(sa.or_(*conditions))
        )
        width = len(conditions)
        rows = await self.store.fetch(query)
        runs = run_records(rows, self.store.live_tasks)
        return [
            (run, tuple(bool(flag) for flag in row[-width:]))
            for run, row in zip(runs, rows, strict=True)
        ]

    async def replay(
        self, condition: sa.ColumnElement[bool], since: datetime, limit: int
    ) -> Replay:
        """Up to ``limit`` runs matching ``condition`` last changed after
        ``since``, and the snapshot of the statement that found them."""
        c = self.store.table.c
        snapshot = sa.select(
            sa.cast(sa.func.pg_current_snapshot(), sa.Text).label("snapshot")
        ).subquery("snap")
        changed = (
            sa.select(c.id, c.updated)
            .where(condition, c.updated > as_utc(since))
            .order_by(c.updated, c.id)
            .limit(limit)
            .lateral("changed")
        )
        query = (
            sa.select(snapshot.c.snapshot, changed.c.id, changed.c.updated)
            .select_from(snapshot.outerjoin(changed, sa.true()))
            .order_by(changed.c.updated, changed.c.id)
        )
        rows = await self.store.fetch(query)
        versions = [
            (row.id, version)
            for row in rows
            if row.id is not None and (version := version_of(row.updated)) is not None
        ]
        return Replay(versions=versions, snapshot=Snapshot.parse(rows[0].snapshot))
