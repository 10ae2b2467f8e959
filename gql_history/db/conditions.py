"""Run filters turned into SQL conditions on the history table."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.dialects.postgresql import ARRAY

from ..core.filters import RunFilter, as_utc
from ..core.tasks import LiveTasks
from ..errors import InvalidQueryError


def filter_condition(
    table: sa.Table,
    run_filter: RunFilter | None,
    *,
    present: Collection[str],
    live_tasks: LiveTasks | None = None,
) -> sa.ColumnElement[bool]:
    """The SQL condition selecting the runs ``run_filter`` matches.

    ``present`` names the columns the table has in the database: a table
    TaskDbPlugin created lacks gql_history's.
    """
    if run_filter is None:
        return sa.true()
    return _Compiler(table, present, live_tasks).condition(run_filter)


@dataclass(frozen=True, slots=True)
class BoundFilter:
    """A filter's condition with its values in named parameters.

    Filters of one ``shape`` (which fields are set, how they nest) share their
    SQL, so a statement built for one serves them all with their ``values``.
    """

    condition: sa.ColumnElement[bool]
    shape: tuple[Any, ...]
    values: dict[str, Any]


def bound_filter(
    table: sa.Table,
    run_filter: RunFilter | None,
    *,
    present: Collection[str],
    live_tasks: LiveTasks | None = None,
) -> BoundFilter:
    """``filter_condition`` with parameters named ``f0``, ``f1``, ... in the
    order the filter's fields come, and the shape deciding its SQL."""
    if run_filter is None:
        return BoundFilter(sa.true(), (), {})
    compiler = _Compiler(table, present, live_tasks, values={})
    condition = compiler.condition(run_filter)
    assert compiler.values is not None
    return BoundFilter(condition, tuple(compiler.shape), compiler.values)


class _Compiler:
    def __init__(
        self,
        table: sa.Table,
        present: Collection[str],
        live_tasks: LiveTasks | None,
        *,
        values: dict[str, Any] | None = None,
    ) -> None:
        self.c = table.c
        self.present = present
        self.live_tasks = live_tasks
        self.values = values
        self.shape: list[Any] = []

    def bind(self, value: Any, type_: Any) -> sa.BindParameter[Any]:
        """A parameter holding ``value``: named when values are collected,
        else anonymous, so conditions of many filters combine in one statement."""
        if self.values is None:
            return sa.bindparam(None, value, type_=type_, unique=True)
        name = f"f{len(self.values)}"
        self.values[name] = value
        return sa.bindparam(name, value, type_=type_)

    def condition(self, f: RunFilter) -> sa.ColumnElement[bool]:
        c = self.c
        parts: list[sa.ColumnElement[bool]] = []
        # the shape takes a token for every part, so equal shapes mean equal SQL
        shape = self.shape
        if f.task is not None:
            parts.append(self.any_of(c.name, f.task))
        if f.state is not None:
            parts.append(self.any_of(c.state, [TaskState(s) for s in f.state]))
        if f.priority is not None:
            parts.append(self.any_of(c.priority, [str(p) for p in f.priority]))
        if f.queued_after is not None:
            shape.append("after")
            parts.append(c.queued >= self.bind(as_utc(f.queued_after), c.queued.type))
        if f.queued_before is not None:
            shape.append("before")
            parts.append(c.queued <= self.bind(as_utc(f.queued_before), c.queued.type))
        if f.queued_within is not None:
            shape.append("within")
            # the database's clock: a saved view keeps meaning "the last hour"
            since = sa.func.now() - self.bind(f.queued_within, sa.Interval())
            parts.append(c.queued >= since)
        if f.params is not None:
            if not isinstance(f.params, Mapping):
                raise InvalidQueryError("params must be a JSON object")
            shape.append("params")
            parts.append(c.params.contains(self.bind(dict(f.params), c.params.type)))
        if f.tags is not None:
            parts.append(self.tags(f.tags))
        if f.error_contains is not None:
            parts.append(self.error_contains(f.error_contains))
        if f.search is not None:
            parts.append(self.search(f.search))
        if f.from_run_id is not None:
            parts.append(self.lineage("from_run_id", f.from_run_id))
        if f.root_run_id is not None:
            parts.append(self.lineage("root_run_id", f.root_run_id))
        if f.all_of is not None:
            shape.append(("all", len(f.all_of)))
            parts.extend(self.condition(sub) for sub in f.all_of)
        if f.any_of is not None:
            shape.append(("any", len(f.any_of)))
            parts.append(sa.or_(sa.false(), *(self.condition(s) for s in f.any_of)))
        if f.negate is not None:
            shape.append("not")
            parts.append(sa.not_(self.condition(f.negate)))
        shape.append(len(parts))
        return sa.and_(sa.true(), *parts)

    def any_of(self, column: Any, values: Sequence[Any]) -> sa.ColumnElement[bool]:
        """``column`` equal to any of ``values``: one array parameter for two
        or more, so the SQL is the same whatever their number."""
        self.shape.append((column.name, min(len(values), 2)))
        if not values:
            return sa.false()
        if len(values) == 1:
            return column == self.bind(values[0], column.type)  # type: ignore[no-any-return]
        bound = self.bind(list(values), ARRAY(column.type))
        return column == sa.any_(bound)  # type: ignore[no-any-return]

    def tags(self, tags: Sequence[str]) -> sa.ColumnElement[bool]:
        """Runs stored with any of ``tags``, or, for rows stored without tags,
        runs of live tasks that carry any of them now."""
        self.shape.append(("tags", bool(tags)))
        if not tags:
            return sa.false()
        live_names = self.live_tasks.names_with_tags(tags) if self.live_tasks else []
        by_live_task = self.c.name == sa.any_(
            self.bind(live_names, ARRAY(self.c.name.type))
        )
        if "tags" not in self.present:
            return by_live_task
        stored = self.c.tags.overlap(self.bind(list(tags), self.c.tags.type))
        return sa.or_(stored, sa.and_(self.c.tags.is_(None), by_live_task))

    def error_contains(self, text: str) -> sa.ColumnElement[bool]:
        """Runs whose error message holds ``text``, in any case."""
        self.shape.append("error")
        if "error_message" not in self.present:
            return sa.false()
        pattern = self.bind(f"%{_escape_like(text)}%", sa.Text())
        return self.c.error_message.ilike(pattern)

    def search(self, text: str) -> sa.ColumnElement[bool]:
        """Runs whose task name or error message holds ``text`` (any case),
        or whose id starts with it: each served by a trigram index."""
        self.shape.append(("search", "error_message" in self.present))
        escaped = _escape_like(text)
        within = self.bind(f"%{escaped}%", sa.Text())
        parts = [
            self.c.name.ilike(within),
            self.c.id.like(self.bind(f"{escaped}%", sa.Text())),
        ]
        if "error_message" in self.present:
            parts.append(self.c.error_message.ilike(within))
        return sa.or_(*parts)

    def lineage(self, column: str, run_id: str) -> sa.ColumnElement[bool]:
        self.shape.append(column)
        if column not in self.present:
            return sa.false()
        return self.c[column] == self.bind(run_id, self.c[column].type)


def _escape_like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (escape ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_array(values: Collection[str]) -> sa.BindParameter[list[str]]:
    """``values`` as one PostgreSQL ``text[]`` parameter, whatever their number,
    so the statement text (and its prepared plan) stays the same."""
    return sa.literal(list(values), ARRAY(sa.Text))
