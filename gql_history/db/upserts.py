"""Writing a batch of runs: one ``INSERT ... SELECT FROM unnest(...) ON
CONFLICT DO UPDATE``, guarded so a run never moves back, then one statement
notifying the rows it changed."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..core.records import (
    FINISHED_RANK,
    LOST_ERROR_TYPE,
    LOST_RANK,
    RUN_FIELDS,
    STATE_RANK,
    RunRecord,
    furthest,
)
from .engine import dumps
from .notifications import channel_for, notify_statement, payload_chunks, version_of
from .tables import retention_table

#: The fields a write sets; ``updated`` is the database's to set.
_WRITTEN = tuple(name for name in RUN_FIELDS if name != "updated")
#: Columns that travel as text in the unnest arrays, decoded by ``_decoded``.
_AS_TEXT = frozenset(("state", "params", "tags"))
#: The horizon of a table never pruned: every run may be inserted.
_NO_HORIZON = sa.literal_column("'-infinity'::timestamptz", sa.DateTime(timezone=True))


async def write_runs(
    conn: AsyncConnection,
    table: sa.Table,
    present: Collection[str],
    records: Sequence[RunRecord],
) -> None:
    """Write ``records`` in ``conn``'s transaction, then, if the progress
    guard let rows through, notify them. PostgreSQL sends the notifications
    when (and only if) the transaction commits."""
    if not records:
        return
    changed = (await conn.execute(upsert_statement(table, present, records))).all()
    await notify_changed(conn, table, changed)


async def notify_changed(
    conn: AsyncConnection, table: sa.Table, changed: Sequence[Any]
) -> None:
    """Notify the rows (``id``, ``state``, ``updated``) a write changed, in
    ``conn``'s transaction: sent when, and only if, it commits."""
    if changed:
        runs = sorted(
            ((row.id, row.state.value, version_of(row.updated)) for row in changed),
            key=lambda run: (run[2] or 0, run[0]),
        )
        await conn.execute(
            notify_statement(channel_for(table)), {"chunks": payload_chunks(runs)}
        )


def upsert_statement(
    table: sa.Table, present: Collection[str], records: Sequence[RunRecord]
) -> sa.Insert:
    """One fixed ``INSERT ... SELECT FROM unnest(...)`` for any batch.

    Each column travels as one array parameter, so the statement text is
    the same for every batch size: SQLAlchemy compiles it once and asyncpg
    prepares it once per connection (a multi-row VALUES statement costs a
    compile of thousands of parameters per batch).
    """
    names = [name for name in _WRITTEN if name in present]
    rows = sorted(furthest(records), key=_by_id)
    unnested = (
        sa.func.unnest(
            *(
                sa.literal(
                    [_value(row, name) for row in rows], _array_type(table, name)
                )
                for name in names
            )
        )
        .table_valued(*names, with_ordinality="position")
        .render_derived()
    )
    values = [_decoded(table, name, unnested.c[name]) for name in names]
    stamped = "updated" in present
    if stamped:
        names.append("updated")
        values.append(written(unnested.c.position))
    for name, value in xact_columns().items():
        if name in present:
            names.append(name)
            values.append(value)
    select = sa.select(*values)
    if "worker" in present:  # and so the retention table
        select = select.where(_after_horizon(table, unnested))
    stmt = insert(table).from_select(names, select)
    excluded = stmt.excluded
    updated = table.c.updated if stamped else sa.null().label("updated")
    return stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={name: excluded[name] for name in names if name != "id"},
        where=_progress(excluded, present) > _progress(table.c, present),
    ).returning(table.c.id, table.c.state, updated)


def written(position: sa.ColumnElement[int]) -> sa.ColumnElement[Any]:
    """The ``updated`` of the run at 1-based ``position`` (by id) of a write:
    the time the statement ran, read once after its snapshot was taken, plus
    ``position - 1`` microseconds, so the runs written together have distinct
    versions, in the order live updates send them.

    Read after the snapshot, the time bounds the ``xact_horizon`` written
    with it: every transaction below that horizon had ended by then, which
    is what lets a ``since`` resume start from the horizon without a gap.
    """
    clock = sa.select(sa.func.clock_timestamp()).scalar_subquery()
    return clock + (position - 1) * sa.literal_column("interval '1 microsecond'")


def xact_columns() -> dict[str, sa.ColumnElement[Any]]:
    """The writing transaction's id (a change's position in the live stream)
    and the horizon of its statement's snapshot, as ``bigint`` (``xid8``
    never passes 2**63)."""
    xact_id = sa.func.pg_current_xact_id()
    horizon = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot())
    return {
        "xact_id": sa.cast(sa.cast(xact_id, sa.Text), sa.BigInteger),
        "xact_horizon": sa.cast(
            sa.cast(sa.select(horizon).scalar_subquery(), sa.Text), sa.BigInteger
        ),
    }


def _array_type(table: sa.Table, name: str) -> ARRAY[Any]:
    """The unnest array of a column: its own type, or text for the columns
    ``_decoded`` converts (enum, JSON, arrays) and for strings of any length."""
    column_type = table.c[name].type
    if name in _AS_TEXT or isinstance(column_type, sa.String):
        return ARRAY(sa.Text)
    return ARRAY(column_type)


def _value(record: RunRecord, name: str) -> Any:
    """A record's value of column ``name``, as its unnest array holds it."""
    value = getattr(record, name)
    if name == "state":
        return value.name
    if name in _AS_TEXT and value is not None:
        return dumps(value)
    return value


def _decoded(table: sa.Table, name: str, value: Any) -> sa.ColumnElement[Any]:
    """An unnested value as its column's type: text to enum, JSON, ``text[]``."""
    if name == "tags":
        elements = sa.select(sa.func.jsonb_array_elements_text(sa.cast(value, JSONB)))
        array = sa.func.array(elements.correlate(value.table).scalar_subquery())
        return sa.case((value.is_(None), sa.null()), else_=array)
    if name in ("state", "params"):
        return sa.cast(value, table.c[name].type)
    return value  # type: ignore[no-any-return]


def _by_id(record: RunRecord) -> str:
    return record.id


def _after_horizon(table: sa.Table, unnested: Any) -> sa.ColumnElement[bool]:
    """Whether a written run may be inserted: queued at or after the horizon
    the last prune applied, or already a row (whose update always applies).
    A late event of a pruned run does not bring it back."""
    horizon = sa.select(retention_table(table).c.horizon).limit(1).scalar_subquery()
    existing = sa.exists().where(table.c.id == unnested.c.id)
    return sa.or_(unnested.c.queued >= sa.func.coalesce(horizon, _NO_HORIZON), existing)


def _progress(columns: Any, present: Iterable[str]) -> sa.ColumnElement[Any]:
    """``(retry_attempt, state rank)`` as an SQL row value; a run the history
    marked lost ranks below running (``LOST_RANK``)."""
    present = set(present)
    ranks = [(columns.state == state, rank) for state, rank in STATE_RANK.items()]
    if "error_type" in present:
        lost = sa.and_(
            columns.state == TaskState.interrupted,
            columns.error_type == LOST_ERROR_TYPE,
        )
        ranks.insert(0, (lost, LOST_RANK))
    rank = sa.case(*ranks, else_=FINISHED_RANK)
    if "retry_attempt" in present:
        return sa.tuple_(sa.func.coalesce(columns.retry_attempt, 0), rank)
    return sa.tuple_(sa.literal(0), rank)
