"""Aggregates over the history table: counts, durations, a time series and
filter facets, one SQL statement each.

Statistics cover a bounded window of ``queued`` times (``core.windows``), so
each statement reads the runs of that window through the ``queued`` index,
however large the table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.dialects.postgresql import ARRAY

from ..core.filters import RunFilter, as_utc
from ..core.windows import BUCKET_ORIGIN, Durations, StatsWindow
from .conditions import text_array
from .store import HistoryStore

#: Most rows of a count by task, and most values of a facet.
MAX_GROUPS = 1000


class RunStats:
    """Aggregate queries over ``store``'s table."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    async def by_state(self, window: StatsWindow) -> dict[TaskState, int]:
        """How many runs of the window are in each state (states with any)."""
        c = self.store.table.c
        query = (
            sa.select(c.state, sa.func.count())
            .where(await self.store.condition(window.run_filter))
            .group_by(c.state)
        )
        return {TaskState(state): count for state, count in await self._all(query)}

    async def by_task(self, window: StatsWindow) -> list[tuple[str, int]]:
        """How many runs of the window each task has, most first."""
        return await self.task_names(window.run_filter)

    async def task_details(
        self, window: StatsWindow, names: Sequence[str]
    ) -> dict[str, TaskDetails]:
        """For each of ``names``, its runs of the window per state and the
        50th, 95th and 99th percentiles of the durations of those that ran:
        two grouped statements, whatever the number of runs."""
        c = self.store.table.c
        condition = sa.and_(
            await self.store.condition(window.run_filter),
            c.name == sa.any_(text_array(names)),
        )
        details = {name: TaskDetails({}, (None, None, None)) for name in names}
        counts = (
            sa.select(c.name, c.state, sa.func.count())
            .where(condition)
            .group_by(c.name, c.state)
        )
        for name, state, count in await self._all(counts):
            details[name].by_state[TaskState(state)] = count
        percentiles = (
            sa.select(
                c.name, sa.func.percentile_cont(_FRACTIONS).within_group(_seconds(c))
            )
            .where(*_ran(c), condition)
            .group_by(c.name)
        )
        for name, values in await self._all(percentiles):
            details[name].percentiles = tuple(values)
        return details

    async def durations(self, window: StatsWindow) -> Durations:
        """Statistics of the durations of the window's finished runs that ran.

        aio-fluid gives a rate-limited run a start (equal to its end) though it
        never ran: counted, it would make the shortest run 0 s.
        """
        c = self.store.table.c
        # date_part is float8; extract (numeric) costs twice as much per row
        seconds = sa.func.date_part("epoch", c.end - c.start, type_=sa.Float)
        finished = (
            sa.select(seconds.label("seconds"))
            .where(await self.store.condition(window.run_filter), *_ran(c))
            .subquery("finished")
        )
        d = finished.c.seconds
        fractions = sa.literal([0.5, 0.95], ARRAY(sa.Float))
        query = sa.select(
            sa.func.count(d),
            sa.func.min(d),
            sa.func.avg(d),
            sa.func.max(d),
            # one sort for both percentiles
            sa.func.percentile_cont(fractions).within_group(d),
        )
        [(count, low, avg, high, percentiles)] = await self._all(query)
        p50, p95 = percentiles or (None, None)
        return Durations(count=count, min=low, avg=avg, p50=p50, p95=p95, max=high)

    async def series(
        self, window: StatsWindow
    ) -> list[tuple[datetime, dict[TaskState, int]]]:
        """Runs per state in every bucket of the window, empty buckets included."""
        c = self.store.table.c
        start = _bucket(c, window)
        query = (
            sa.select(start, c.state, sa.func.count())
            .where(await self.store.condition(window.run_filter))
            .group_by(start, c.state)
        )
        counts: dict[datetime, dict[TaskState, int]] = {
            bucket: {} for bucket in window.buckets
        }
        for bucket, state, count in await self._all(query):
            counts.setdefault(as_utc(bucket), {})[TaskState(state)] = count
        return sorted(counts.items())

    async def series_percentiles(
        self, window: StatsWindow
    ) -> dict[datetime, tuple[float | None, ...]]:
        """The 50th, 95th and 99th duration percentiles of the runs that ran,
        per bucket of the window (buckets without any left out)."""
        c = self.store.table.c
        start = _bucket(c, window)
        query = (
            sa.select(
                start, sa.func.percentile_cont(_FRACTIONS).within_group(_seconds(c))
            )
            .where(await self.store.condition(window.run_filter), *_ran(c))
            .group_by(start)
        )
        return {
            as_utc(bucket): tuple(values) for bucket, values in await self._all(query)
        }

    async def task_names(
        self, run_filter: RunFilter | None, *, limit: int = MAX_GROUPS
    ) -> list[tuple[str, int]]:
        """Each task name with its number of runs ``run_filter`` matches,
        most runs first, then by name."""
        c = self.store.table.c
        count = sa.func.count()
        query = (
            sa.select(c.name, count)
            .where(await self.store.condition(run_filter))
            .group_by(c.name)
            .order_by(count.desc(), c.name)
            .limit(limit)
        )
        return [(name, n) for name, n in await self._all(query)]

    async def task_tags(
        self,
        run_filter: RunFilter | None,
        *,
        limit: int = MAX_GROUPS,
    ) -> list[tuple[str, int]]:
        """Each tag with its number of runs ``run_filter`` matches, most runs
        first, then by tag. Runs stored without tags count under their live
        task's tags, as filters match them."""
        c = self.store.table.c
        condition = await self.store.condition(run_filter)
        # few distinct tag lists: group by the list, count its tags here
        if "tags" in await self.store.present_columns():
            untagged = sa.case((c.tags.is_(None), c.name)).label("name")
            query = (
                sa.select(c.tags, untagged, sa.func.count())
                .where(condition)
                .group_by(c.tags, untagged)
            )
        else:
            query = (
                sa.select(sa.null().label("tags"), c.name, sa.func.count())
                .where(condition)
                .group_by(c.name)
            )
        counts: Counter[str] = Counter()
        for tags, task_name, count in await self._all(query):
            if tags is None and task_name is not None:
                tags = self.store.live_tasks.tags_of(task_name)
            for tag in set(tags or ()):
                counts[tag] += count
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:limit]

    async def _all(self, query: Any) -> Sequence[Any]:
        return await self.store.fetch(query)


#: The percentiles per task and per bucket: p50, p95, p99.
_FRACTIONS = sa.literal([0.5, 0.95, 0.99], ARRAY(sa.Float))


def _seconds(c: Any) -> sa.ColumnElement[float]:
    # date_part is float8; extract (numeric) costs twice as much per row
    return sa.func.date_part("epoch", c.end - c.start, type_=sa.Float)


def _bucket(c: Any, window: StatsWindow) -> sa.ColumnElement[datetime]:
    """The start of the bucket of the window a run was queued in."""
    return sa.func.date_bin(
        sa.literal(window.bucket.step, sa.Interval),
        c.queued,
        sa.literal(BUCKET_ORIGIN, sa.DateTime(timezone=True)),
    ).label("bucket")


def _ran(c: Any) -> tuple[sa.ColumnElement[bool], ...]:
    """Runs that ran to an end: aio-fluid gives a rate-limited run a start
    (equal to its end) though it never ran."""
    return (c.start.is_not(None), c.end.is_not(None), c.state != TaskState.rate_limited)


@dataclass(slots=True)
class TaskDetails:
    """One task's runs of a window by state, and its duration percentiles."""

    by_state: dict[TaskState, int]
    percentiles: tuple[float | None, ...]
    """The 50th, 95th and 99th percentiles, in seconds (None without runs)."""

    @property
    def failure_rate(self) -> float | None:
        """Failures among the runs that succeeded or failed; None without any."""
        failed = self.by_state.get(TaskState.failure, 0)
        ended = failed + self.by_state.get(TaskState.success, 0)
        return failed / ended if ended else None
