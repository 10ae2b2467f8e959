"""Run filters: what a history query may ask for, whatever edge asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fluid.scheduler import TaskPriority, TaskState
from pydantic import TypeAdapter, ValidationError

from ..errors import InvalidQueryError
from .text import check_json, check_texts

#: The longest relative window: past it ``now() - window`` leaves the
#: database's range of times.
MAX_WITHIN = timedelta(days=36525)
_DURATION = TypeAdapter(timedelta)


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
    queued_within: timedelta | None = None
    """Runs queued at most this long before the database's ``now()``."""
    params: Mapping[str, Any] | None = None
    tags: Sequence[str] | None = None
    error_contains: str | None = None
    """A case-insensitive substring of the error message."""
    search: str | None = None
    """A case-insensitive substring of the task name or error message, or a
    prefix of the run id."""
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
        searched = (self.error_contains, self.search)
        check_texts((t for t in searched if t is not None), "errorContains/search")
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

    def searches_text(self) -> bool:
        """Whether this filter or a sub-filter has a text condition."""
        if self.error_contains is not None or self.search is not None:
            return True
        return any(child.searches_text() for child in self._children())

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
    "queued_within",
    "params",
    "tags",
    "error_contains",
    "search",
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


def parse_duration(text: str, name: str = "queuedWithin") -> timedelta:
    """The positive ISO 8601 duration ``text`` (``PT1H``, ``P7D``,
    ``P1DT12H``; a month is 30 days, a year 365); raises
    ``InvalidQueryError`` naming the field ``name`` otherwise."""
    problem = (
        f"`{name}` must be a positive ISO 8601 duration such as PT1H, PT30M "
        f"or P7D, not {text!r}"
    )
    if not text.startswith("P"):
        raise InvalidQueryError(problem)
    try:
        duration = _DURATION.validate_python(text)
    except ValidationError:
        raise InvalidQueryError(problem) from None
    if duration <= timedelta(0):
        raise InvalidQueryError(problem)
    if duration > MAX_WITHIN:
        raise InvalidQueryError(f"`{name}` may span at most 100 years, not {text}")
    return duration
