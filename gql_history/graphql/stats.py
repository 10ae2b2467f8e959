"""Strawberry types of the overview: run statistics and filter facets.

Every part of ``TaskRunStats`` is a resolver, so only the parts a query
selects cost a statement.

No ``from __future__ import annotations``: Strawberry reads live annotations.
"""

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import strawberry
from fluid import scheduler
from strawberry.types.nodes import SelectedField

from ..core.filters import RunFilter
from ..core.windows import Bucket, StatsWindow
from .enums import StatsBucket, TaskState

if TYPE_CHECKING:
    from ..service import HistoryService

#: States in lifecycle order, the order counts by state are listed in.
_STATE_ORDER = {state: index for index, state in enumerate(scheduler.TaskState)}


@strawberry.type(description="How many runs are in a state.")
class StateCount:
    state: TaskState = strawberry.field(description="The state.")
    count: int = strawberry.field(description="How many runs are in it.")


@strawberry.type(
    description="Percentiles of the durations of a task's runs that ran (seconds)."
)
class DurationPercentiles:
    p50: float | None = strawberry.field(description="The median (interpolated).")
    p95: float | None = strawberry.field(
        description="The 95th percentile (interpolated)."
    )
    p99: float | None = strawberry.field(
        description="The 99th percentile (interpolated)."
    )


@strawberry.type(description="How many runs a task has.")
class TaskCount:
    task: str = strawberry.field(description="The task's name.")
    count: int = strawberry.field(description="How many runs it has.")
    by_state: list[StateCount] | None = strawberry.field(
        default=None,
        description="How many of them are in each state (states with any, in "
        "lifecycle order); in `runStats.byTask` only, else null.",
    )
    failure_rate: float | None = strawberry.field(
        default=None,
        description="Failures among the runs that succeeded or failed (0 to 1); "
        "null without any, and outside `runStats.byTask`.",
    )
    duration: DurationPercentiles | None = strawberry.field(
        default=None,
        description="Percentiles of the durations of its runs that ran (not the "
        "rate-limited), computed in SQL; in `runStats.byTask` only, else null.",
    )


@strawberry.type(description="How many runs carry a tag.")
class TagCount:
    tag: str = strawberry.field(description="The tag.")
    count: int = strawberry.field(description="How many runs carry it.")


@strawberry.type(
    description=(
        "Seconds from start to end of the finished runs that ran: rate-limited "
        "runs, which never start, are left out; null without any."
    )
)
class DurationStats:
    count: int = strawberry.field(description="How many runs it covers.")
    min: float | None = strawberry.field(description="The shortest.")
    avg: float | None = strawberry.field(description="The mean.")
    p50: float | None = strawberry.field(description="The median (interpolated).")
    p95: float | None = strawberry.field(
        description="The 95th percentile (interpolated)."
    )
    max: float | None = strawberry.field(description="The longest.")


@strawberry.type(description="The runs queued within one time bucket.")
class StatsPoint:
    start: datetime = strawberry.field(description="When the bucket starts.")
    total: int = strawberry.field(description="How many runs were queued in it.")
    by_state: list[StateCount] = strawberry.field(
        description="How many of them are in each state (states with any)."
    )
    duration: DurationPercentiles | None = strawberry.field(
        default=None,
        description="Percentiles of the durations of its runs that ran, in SQL "
        "(computed only when selected; all null in a bucket without any).",
    )


@strawberry.type(
    description=(
        "Statistics of the runs matching a filter queued within a window: "
        "the filter's `queuedAfter`/`queuedBefore`, an open end being now, "
        "or 60 minutes, 24 hours or 30 days before it (by `bucket`)."
    )
)
class TaskRunStats:
    bucket: StatsBucket = strawberry.field(description="The width of `series` buckets.")
    window_start: datetime = strawberry.field(
        description="The earliest queued time covered."
    )
    window_end: datetime = strawberry.field(
        description="The latest queued time covered."
    )
    service: strawberry.Private["HistoryService"]
    window: strawberry.Private[StatsWindow]
    memo: strawberry.Private[dict[str, "asyncio.Future[Any]"]]

    @strawberry.field(description="How many runs the window holds.")
    async def total(self) -> int:
        return sum((await self._by_state()).values())

    @strawberry.field(
        description="How many runs are in each state (states with any, in "
        "lifecycle order)."
    )
    async def by_state(self) -> list[StateCount]:
        return _state_counts(await self._by_state())

    @strawberry.field(
        description="How many runs each task has, most first (the 1,000 busiest), "
        "with its counts per state, failure rate and duration percentiles "
        "(read only when selected)."
    )
    async def by_task(self, info: strawberry.Info) -> list[TaskCount]:
        counts = await self.service.stats.by_task(self.window)
        if not _asks_details(info):
            return [TaskCount(task=name, count=count) for name, count in counts]
        names = [name for name, _ in counts]
        details = await self.service.stats.task_details(self.window, names)
        return [
            TaskCount(
                task=name,
                count=count,
                by_state=_state_counts(details[name].by_state),
                failure_rate=details[name].failure_rate,
                duration=_percentiles(details[name].percentiles),
            )
            for name, count in counts
        ]

    @strawberry.field(description="Durations of the finished runs that ran.")
    async def duration(self) -> DurationStats:
        d = await self.service.stats.durations(self.window)
        return DurationStats(
            count=d.count, min=d.min, avg=d.avg, p50=d.p50, p95=d.p95, max=d.max
        )

    @strawberry.field(
        description="Runs per state in each bucket of the window, oldest first, "
        "empty buckets included."
    )
    async def series(self, info: strawberry.Info) -> list[StatsPoint]:
        stats = self.service.stats
        percentiles = None
        if _asks(info, "duration"):
            percentiles = await stats.series_percentiles(self.window)
        return [
            StatsPoint(
                start=start,
                total=sum(counts.values()),
                by_state=_state_counts(counts),
                duration=None
                if percentiles is None
                else _percentiles(percentiles.get(start, (None, None, None))),
            )
            for start, counts in await stats.series(self.window)
        ]

    def _by_state(self) -> Awaitable[dict[scheduler.TaskState, int]]:
        """The counts by state, read once for ``total`` and ``byState``."""
        found = self.memo.get("by_state")
        if found is None:
            found = asyncio.ensure_future(self.service.stats.by_state(self.window))
            self.memo["by_state"] = found
        return found


def run_stats(
    service: "HistoryService", run_filter: RunFilter | None, bucket: StatsBucket
) -> TaskRunStats:
    """The statistics of ``run_filter`` in ``bucket``s; raises
    ``InvalidQueryError`` when the window holds too many buckets."""
    window = service.stats_window(run_filter, cast(Bucket, bucket.value))
    return TaskRunStats(
        bucket=bucket,
        window_start=window.start,
        window_end=window.end,
        service=service,
        window=window,
        memo={},
    )


async def task_names(
    service: "HistoryService", run_filter: RunFilter | None
) -> list[TaskCount]:
    """The task-name facet of ``run_filter``."""
    counts = await service.task_names(run_filter)
    return [TaskCount(task=name, count=count) for name, count in counts]


async def task_tags(
    service: "HistoryService", run_filter: RunFilter | None
) -> list[TagCount]:
    """The tag facet of ``run_filter``."""
    counts = await service.task_tags(run_filter)
    return [TagCount(tag=tag, count=count) for tag, count in counts]


def _percentiles(values: tuple[float | None, ...]) -> DurationPercentiles:
    p50, p95, p99 = values
    return DurationPercentiles(p50=p50, p95=p95, p99=p99)


#: ``TaskCount`` fields a plain count by task fills.
_PLAIN = frozenset(("task", "count", "__typename"))


def _asks_details(info: strawberry.Info) -> bool:
    """Whether the selection under this field reaches past task and count
    (a fragment counts as asking)."""
    return any(
        not isinstance(s, SelectedField) or s.name not in _PLAIN
        for field in info.selected_fields
        for s in field.selections
    )


def _asks(info: strawberry.Info, name: str) -> bool:
    """Whether the selection under this field names ``name`` (or holds a
    fragment, which may)."""
    return any(
        not isinstance(s, SelectedField) or s.name == name
        for field in info.selected_fields
        for s in field.selections
    )


def _state_counts(counts: dict[scheduler.TaskState, int]) -> list[StateCount]:
    ordered = sorted(counts.items(), key=lambda item: _STATE_ORDER.get(item[0], 99))
    return [
        StateCount(state=state, count=count)  # type: ignore[arg-type]
        for state, count in ordered
        if count
    ]
