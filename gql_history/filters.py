"""Run filters: what a history query may ask for, turned into SQL conditions."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fluid.scheduler import TaskPriority, TaskState

from .errors import InvalidQueryError

#: Given tags, the names of live tasks carrying any of them (rows without tags).
TaskNamesByTags = Callable[[Collection[str]], Collection[str]]


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Conditions on task runs; every field that is set must hold.

    ``None`` leaves a field unconstrained; an empty list matches no run.
    ``all_of`` holds when every sub-filter holds (so ``[]`` matches every run),
    ``any_of`` when at least one does (so ``[]`` matches none).
    """

    task: Sequence[str] | None = None
    state: Sequence[TaskState] | None = None
    priority: Sequence[TaskPriority] | None = None
    queued_after: datetime | None = None
    queued_before: datetime | None = None
    params: Mapping[str, Any] | None = None
    tags: Sequence[str] | None = None
    from_run_id: str | None = None
    root_run_id: str | None = None
    all_of: Sequence[RunFilter] | None = None
    any_of: Sequence[RunFilter] | None = None
    negate: RunFilter | None = None

    def depth(self) -> int:
        """How deeply combinators nest, 1 for a filter without any."""
        children = [*(self.all_of or ()), *(self.any_of or ())]
        if self.negate is not None:
            children.append(self.negate)
        return 1 + max((child.depth() for child in children), default=0)


def filter_condition(
    table: sa.Table,
    run_filter: RunFilter | None,
    *,
    present: Collection[str],
    task_names_by_tags: TaskNamesByTags | None = None,
) -> sa.ColumnElement[bool]:
    """The SQL condition selecting the runs ``run_filter`` matches.

    ``present`` names the columns the table has in the database: a table
    TaskDbPlugin created lacks gql_history's.
    """
    if run_filter is None:
        return sa.true()
    return _Compiler(table, present, task_names_by_tags).condition(run_filter)


class _Compiler:
    def __init__(
        self,
        table: sa.Table,
        present: Collection[str],
        task_names_by_tags: TaskNamesByTags | None,
    ) -> None:
        self.c = table.c
        self.present = present
        self.task_names_by_tags = task_names_by_tags

    def condition(self, f: RunFilter) -> sa.ColumnElement[bool]:
        c = self.c
        parts: list[sa.ColumnElement[bool]] = []
        if f.task is not None:
            parts.append(_any_of(c.name, f.task))
        if f.state is not None:
            parts.append(_any_of(c.state, [TaskState(s) for s in f.state]))
        if f.priority is not None:
            parts.append(_any_of(c.priority, [str(p) for p in f.priority]))
        if f.queued_after is not None:
            parts.append(c.queued >= as_utc(f.queued_after))
        if f.queued_before is not None:
            parts.append(c.queued <= as_utc(f.queued_before))
        if f.params is not None:
            if not isinstance(f.params, Mapping):
                raise InvalidQueryError("params must be a JSON object")
            parts.append(c.params.contains(dict(f.params)))
        if f.tags is not None:
            parts.append(self.tags(f.tags))
        if f.from_run_id is not None:
            parts.append(self.lineage("from_run_id", f.from_run_id))
        if f.root_run_id is not None:
            parts.append(self.lineage("root_run_id", f.root_run_id))
        if f.all_of is not None:
            parts.extend(self.condition(sub) for sub in f.all_of)
        if f.any_of is not None:
            parts.append(sa.or_(sa.false(), *(self.condition(s) for s in f.any_of)))
        if f.negate is not None:
            parts.append(sa.not_(self.condition(f.negate)))
        return sa.and_(sa.true(), *parts)

    def tags(self, tags: Sequence[str]) -> sa.ColumnElement[bool]:
        """Runs stored with any of ``tags``, or, for rows stored without tags,
        runs of live tasks that carry any of them now."""
        if not tags:
            return sa.false()
        live_names = (
            sorted(self.task_names_by_tags(tags)) if self.task_names_by_tags else []
        )
        by_live_task = _any_of(self.c.name, live_names)
        if "tags" not in self.present:
            return by_live_task
        stored = self.c.tags.overlap(sa.cast(list(tags), self.c.tags.type))
        return sa.or_(stored, sa.and_(self.c.tags.is_(None), by_live_task))

    def lineage(self, column: str, run_id: str) -> sa.ColumnElement[bool]:
        if column not in self.present:
            return sa.false()
        return self.c[column] == run_id


def _any_of(column: Any, values: Sequence[Any]) -> sa.ColumnElement[bool]:
    if not values:
        return sa.false()
    if len(values) == 1:
        return column == values[0]  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC, a naive one taken as UTC already.

    (aio-fluid's ``as_utc`` replaces the zone of an aware value instead of
    converting it, which would move the bound by the value's UTC offset.)
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
