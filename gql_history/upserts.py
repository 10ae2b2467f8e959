"""The one statement writing a batch of runs: ``INSERT ... SELECT FROM
unnest(...) ON CONFLICT DO UPDATE``, guarded so a run never moves back."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from .db import dumps

#: Lifecycle rank of each state: a write never replaces a higher rank.
STATE_RANK: dict[TaskState, int] = {
    TaskState.init: 0,
    TaskState.queued: 1,
    TaskState.running: 2,
}
FINISHED_RANK = 3


@dataclass(slots=True)
class RunRecord:
    """One run's state as the plugin writes it."""

    id: str
    name: str
    priority: str
    state: TaskState
    queued: datetime
    start: datetime | None
    end: datetime | None
    params: dict[str, Any]
    from_run_id: str
    root_run_id: str
    retry_attempt: int
    error_type: str | None
    error_message: str | None
    tags: list[str] | None  # None: not known, read as the live task's tags

    @property
    def progress(self) -> tuple[int, int]:
        """How far the run has gone: later attempts, then later states, win."""
        return self.retry_attempt, STATE_RANK.get(self.state, FINISHED_RANK)


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
    arrays = {name: [_WRITTEN[name][1](row) for row in rows] for name in names}
    unnested = (
        sa.func.unnest(
            *(sa.literal(arrays[name], ARRAY(_WRITTEN[name][0])) for name in names)
        )
        .table_valued(*names, with_ordinality="position")
        .render_derived()
    )
    values = [_decoded(table, name, unnested.c[name]) for name in names]
    stamped = "updated" in present
    if stamped:
        names.append("updated")
        values.append(written(unnested.c.position))
    stmt = insert(table).from_select(names, sa.select(*values))
    excluded = stmt.excluded
    updated = table.c.updated if stamped else sa.null().label("updated")
    return stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={name: excluded[name] for name in names if name != "id"},
        where=_progress(excluded, present) > _progress(table.c, present),
    ).returning(table.c.id, table.c.state, updated)


def written(position: sa.ColumnElement[int]) -> sa.ColumnElement[Any]:
    """The ``updated`` of the run at 1-based ``position`` (by id) of a write:
    the transaction's time plus ``position - 1`` microseconds, so the runs
    written together have distinct versions, in the order live updates send
    them."""
    return sa.func.now() + (position - 1) * sa.literal_column(
        "interval '1 microsecond'"
    )


#: Per written column: the element type of its unnest array and how a record
#: gives its value (JSON travels as text, decoded by ``_decoded``).
_WRITTEN: dict[str, tuple[Any, Any]] = {
    "id": (sa.Text, lambda r: r.id),
    "name": (sa.Text, lambda r: r.name),
    "priority": (sa.Text, lambda r: r.priority),
    "state": (sa.Text, lambda r: r.state.name),
    "queued": (sa.DateTime(timezone=True), lambda r: r.queued),
    "start": (sa.DateTime(timezone=True), lambda r: r.start),
    "end": (sa.DateTime(timezone=True), lambda r: r.end),
    "params": (sa.Text, lambda r: dumps(r.params)),
    "from_run_id": (sa.Text, lambda r: r.from_run_id),
    "root_run_id": (sa.Text, lambda r: r.root_run_id),
    "retry_attempt": (sa.Integer, lambda r: r.retry_attempt),
    "error_type": (sa.Text, lambda r: r.error_type),
    "error_message": (sa.Text, lambda r: r.error_message),
    "tags": (sa.Text, lambda r: None if r.tags is None else dumps(r.tags)),
}


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


def furthest(records: Iterable[RunRecord]) -> list[RunRecord]:
    """One record per run, the one that went furthest (the first among equals)."""
    by_id: dict[str, RunRecord] = {}
    for record in records:
        current = by_id.get(record.id)
        if current is None or record.progress > current.progress:
            by_id[record.id] = record
    return list(by_id.values())


def _progress(columns: Any, present: Iterable[str]) -> sa.ColumnElement[Any]:
    """``(retry_attempt, state rank)`` as an SQL row value."""
    rank = sa.case(
        *((columns.state == state, rank) for state, rank in STATE_RANK.items()),
        else_=FINISHED_RANK,
    )
    if "retry_attempt" in set(present):
        return sa.tuple_(sa.func.coalesce(columns.retry_attempt, 0), rank)
    return sa.tuple_(sa.literal(0), rank)
