"""Run filters: what a history query may ask for, whatever edge asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fluid.scheduler import TaskPriority, TaskState

from .text import check_json, check_texts


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

    def __post_init__(self) -> None:
        # text no row can hold is a client's mistake, not a database error
        check_texts(self.task or (), "task")
        check_texts(self.tags or (), "tags")
        ids = (self.from_run_id, self.root_run_id)
        check_texts((i for i in ids if i is not None), "parentRunId/rootRunId")
        if self.params is not None:
            check_json(self.params, "params")

    def depth(self) -> int:
        """How deeply combinators nest, 1 for a filter without any."""
        return 1 + max((child.depth() for child in self._children()), default=0)

    def size(self) -> int:
        """How many conditions it holds at any depth (a filter with no
        field set counts as one)."""
        own = sum(getattr(self, name) is not None for name in _LEAVES)
        return max(own, 1) + sum(child.size() for child in self._children())

    def most_values(self) -> int:
        """The most values, or sub-filters, of one of its lists, at any depth."""
        lists = [getattr(self, name) or () for name in _LISTS]
        most = max(len(values) for values in lists)
        return max([most, *(child.most_values() for child in self._children())])

    def _children(self) -> list[RunFilter]:
        children = [*(self.all_of or ()), *(self.any_of or ())]
        if self.negate is not None:
            children.append(self.negate)
        return children


#: The fields of a filter that are conditions of their own.
_LEAVES = (
    "task",
    "state",
    "priority",
    "queued_after",
    "queued_before",
    "params",
    "tags",
    "from_run_id",
    "root_run_id",
)
#: The fields of a filter holding lists.
_LISTS = ("task", "state", "priority", "tags", "all_of", "any_of")


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC, a naive one taken as UTC already.

    (aio-fluid's ``as_utc`` replaces the zone of an aware value instead of
    converting it, which would move the bound by the value's UTC offset.)
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
