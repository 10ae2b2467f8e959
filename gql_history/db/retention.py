"""Retention: deleting old runs in short batches."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.dialects.postgresql import insert

from .tables import retention_table


def prune_statement(
    table: sa.Table,
    older_than: datetime,
    *,
    states: Collection[TaskState] | None,
    limit: int,
) -> sa.Delete:
    """Delete up to ``limit`` runs queued before ``older_than``, oldest first.

    Rows locked by a concurrent write are skipped, left for the next batch, so
    a batch never waits on (or blocks) the writer.
    """
    c = table.c
    oldest = (
        sa.select(c.id)
        .where(c.queued < older_than)
        .order_by(c.queued, c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if states is not None:
        oldest = oldest.where(c.state.in_(list(states)))
    return sa.delete(table).where(c.id.in_(oldest.scalar_subquery()))


def horizon_statement(table: sa.Table, older_than: datetime) -> sa.Insert:
    """Record that runs queued before ``older_than`` are pruned: the horizon
    only moves forward, and the upsert inserts no run queued before it."""
    retention = retention_table(table)
    stmt = insert(retention).values(id=True, horizon=older_than)
    return stmt.on_conflict_do_update(
        index_elements=[retention.c.id],
        set_={"horizon": sa.func.greatest(retention.c.horizon, stmt.excluded.horizon)},
    )
