"""Run filters: what a history query may ask for, whatever edge asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fluid.scheduler import TaskPriority, TaskState


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


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC, a naive one taken as UTC already.

    (aio-fluid's ``as_utc`` replaces the zone of an aware value instead of
    converting it, which would move the bound by the value's UTC offset.)
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
