"""Workers' heartbeats and lost runs: the statements.

aio-fluid takes a run off Redis at most once, so a worker killed mid-run
leaves its runs ``queued`` or ``running`` forever. Each process writing runs
keeps a heartbeat row; one process at a time (a transaction-level advisory
try-lock, per table) marks ``interrupted`` the live runs of a worker silent
for longer than the grace, and the running runs past their task's timeout
plus a margin, saying why in ``error_message`` (``error_type`` is
``LOST_ERROR_TYPE``, which ranks below running: a late event corrects it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..core.records import LOST_ERROR_TYPE
from .tables import workers_table
from .upserts import written, xact_columns

#: The name hashed, with the table's, into the reaper's advisory-lock key.
_REAP_LOCK = "gql_history:reap:"
#: A run the history may mark lost: one that looks live.
_LIVE_STATES = (TaskState.queued, TaskState.running)
_SECOND: sa.ColumnElement[Any] = sa.literal_column("interval '1 second'")
_ISO_UTC = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'


def heartbeat_statement(table: sa.Table, worker: str) -> sa.Insert:
    """Record that ``worker`` is alive now (its first beat, its start)."""
    workers = workers_table(table)
    stmt = insert(workers).values(
        name=worker, started=sa.func.now(), last_seen=sa.func.now()
    )
    return stmt.on_conflict_do_update(
        index_elements=[workers.c.name], set_={"last_seen": sa.func.now()}
    )


async def try_reap_lock(conn: AsyncConnection, table: sa.Table) -> bool:
    """Take the reaper's lock of ``table`` for ``conn``'s transaction, if no
    other transaction holds it; whether it did."""
    key = sa.func.hashtextextended(sa.literal(_REAP_LOCK + table.name), 0)
    taken = await conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(key)))
    return bool(taken.scalar())


def _silent(table: sa.Table, grace: float) -> sa.ColumnElement[bool]:
    """Whether a run's worker has sent no heartbeat for ``grace`` seconds."""
    return workers_table(table).c.last_seen < sa.func.now() - grace * _SECOND


def silent_queued_statement(table: sa.Table, *, grace: float) -> sa.Select[Any]:
    """The ids of the queued runs whose writer is silent: lost if the dead
    process had taken them, or still waiting in the broker's queue if it
    had only queued them (the reaper asks the broker)."""
    c, w = table.c, workers_table(table).c
    return (
        sa.select(c.id)
        .select_from(table.join(workers_table(table), c.worker == w.name))
        .where(c.state == TaskState.queued, _silent(table, grace))
    )


def _queued_among(
    c: Any, lost_queued: Collection[str] | None
) -> sa.ColumnElement[bool]:
    if lost_queued is None:
        return sa.true()
    ids = sa.literal(sorted(lost_queued), ARRAY(sa.Text))
    return sa.or_(c.state != TaskState.queued, c.id == sa.any_(ids))


def lost_runs_statement(
    table: sa.Table,
    *,
    reaper: str,
    grace: float,
    timeout_margin: float,
    timeouts: Mapping[str, float],
    limit: int,
    lost_queued: Collection[str] | None = None,
) -> sa.Update:
    """Mark up to ``limit`` lost runs interrupted, in one ``UPDATE``: they
    are locked (rows a writer holds are left for the next pass) and each
    gets why and by whom; it returns what ``notify_changed`` needs. Given
    ``lost_queued`` (the silent workers' queued runs the broker no longer
    holds), only those of the queued runs are marked: the others still wait
    on its queues for a live worker."""
    c, w = table.c, workers_table(table).c
    names = sa.literal(list(timeouts), ARRAY(sa.Text))
    seconds = sa.literal([float(s) for s in timeouts.values()], ARRAY(sa.Float))
    limits = (
        sa.func.unnest(names, seconds)
        .table_valued("task", "timeout")
        .render_derived(name="timeouts")
    )
    silent = _silent(table, grace)
    overdue = sa.and_(
        c.state == TaskState.running,
        c.start < sa.func.now() - (limits.c.timeout + timeout_margin) * _SECOND,
    )
    lost = (
        sa.select(
            c.id,
            w.last_seen,
            silent.label("silent"),
            limits.c.timeout,
        )
        .select_from(
            table.outerjoin(workers_table(table), c.worker == w.name).outerjoin(
                limits, c.name == limits.c.task
            )
        )
        .where(c.state.in_(_LIVE_STATES), sa.or_(silent, overdue))
        .where(_queued_among(c, lost_queued))
        .limit(limit)
        .with_for_update(of=table, skip_locked=True)
        .cte("lost")
    )
    numbered = sa.select(
        *lost.c, sa.func.row_number().over(order_by=lost.c.id).label("position")
    ).cte("numbered")
    n = numbered.c
    seen = sa.func.to_char(sa.func.timezone("UTC", n.last_seen), _ISO_UTC)
    why = sa.case(
        (
            n.silent,
            sa.func.format(
                "worker %s stopped sending heartbeats at %s; marked interrupted by %s",
                c.worker,
                seen,
                reaper,
            ),
        ),
        else_=sa.func.format(
            "ran past its %ss timeout plus a %ss margin with no end recorded "
            "(worker %s); marked interrupted by %s",
            n.timeout,
            timeout_margin,
            sa.func.coalesce(c.worker, "unknown"),
            reaper,
        ),
    )
    ended: Any = sa.case((n.silent, n.last_seen), else_=sa.func.now())
    return (
        sa.update(table)
        .where(c.id == n.id)
        .values(
            state=TaskState.interrupted,
            end=sa.func.greatest(ended, c.start),
            error_type=LOST_ERROR_TYPE,
            error_message=why,
            updated=written(n.position),
            **xact_columns(),  # a write like any other: streamed live
        )
        .returning(c.id, c.state, c.updated)
    )
