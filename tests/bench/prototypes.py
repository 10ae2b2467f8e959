"""Prototypes of proposed changes, measured by the benchmark beside the real code.

Nothing here is used by gql_history: each class shows one proposal in the
smallest form that can be timed (``--prototypes``), for whoever adopts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gql_history import HistoryStore
from gql_history.db import dumps as _dumps
from gql_history.store import RunRecord

_COLUMNS = (
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
)
_ARRAY_TYPES = (
    "text",
    "text",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "text",
    "text",
    "text",
    "int",
    "text",
    "text",
    "text",
)
_CASTS = {"state": "::taskstate", "params": "::jsonb", "tags": "::text[]"}


def _progress(alias: str) -> str:
    """The ``(retry_attempt, state rank)`` row value of ``alias``."""
    return (
        f"(coalesce({alias}.retry_attempt, 0), CASE {alias}.state "
        "WHEN 'init' THEN 0 WHEN 'queued' THEN 1 WHEN 'running' THEN 2 ELSE 3 END)"
    )


def _upsert_sql(table: str) -> str:
    quoted = [f'"{name}"' for name in _COLUMNS]
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_ARRAY_TYPES, start=1))
    selected = ", ".join(
        f"u.{q}{_CASTS.get(n, '')}" for n, q in zip(_COLUMNS, quoted, strict=True)
    )
    updates = ", ".join(f"{q} = excluded.{q}" for q in [*quoted[1:], '"updated"'])
    return (
        f'INSERT INTO "{table}" AS cur ({", ".join(quoted)}, "updated") '
        f"SELECT {selected}, now() FROM unnest({arrays}) AS u({', '.join(quoted)}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates} "
        f"WHERE {_progress('excluded')} > {_progress('cur')}"
    )


def _pg_text_array(values: Sequence[str]) -> str:
    quoted = (
        '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values
    )
    return "{" + ",".join(quoted) + "}"


def _furthest(records: Sequence[RunRecord]) -> list[RunRecord]:
    """One record per run: the one that went furthest."""
    by_id: dict[str, RunRecord] = {}
    for record in records:
        current = by_id.get(record.id)
        if current is None or record.progress > current.progress:
            by_id[record.id] = record
    return list(by_id.values())


class UnnestUpsertStore(HistoryStore):
    """``upsert`` as one fixed statement over ``unnest`` of 14 array parameters.

    The text never changes, so SQLAlchemy compiles nothing and asyncpg
    prepares it once per connection; a batch of any size is 14 parameters
    instead of 15 per row. (Assumes every gql_history column is present.)
    """

    _sql: str | None = None

    async def upsert(self, records: Sequence[RunRecord]) -> None:
        if not records:
            return
        if self._sql is None:
            self._sql = _upsert_sql(self.table.name)
        columns: list[list[Any]] = [[] for _ in _COLUMNS]
        for r in _furthest(records):
            values = (
                r.id,
                r.name,
                r.priority,
                r.state.name,
                r.queued,
                r.start,
                r.end,
                _dumps(r.params),
                r.from_run_id,
                r.root_run_id,
                r.retry_attempt,
                r.error_type,
                r.error_message,
                _pg_text_array(r.tags),
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        async with self.engine.begin() as conn:
            await conn.exec_driver_sql(self._sql, tuple(columns))
