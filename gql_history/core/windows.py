"""Statistics windows: the bounded span of ``queued`` times that statistics
cover, cut into buckets, and what a duration summary holds."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import InvalidQueryError
from .filters import RunFilter, as_utc

#: Buckets align on whole UTC minutes, hours and days from here.
BUCKET_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


class Bucket(enum.StrEnum):
    """The width of the buckets of a time series."""

    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"

    @property
    def step(self) -> timedelta:
        """The width of one bucket."""
        return _STEPS[self]


_STEPS = {
    Bucket.MINUTE: timedelta(minutes=1),
    Bucket.HOUR: timedelta(hours=1),
    Bucket.DAY: timedelta(days=1),
}
#: Buckets of the window when the filter does not bound ``queued`` below.
DEFAULT_BUCKETS = {Bucket.MINUTE: 60, Bucket.HOUR: 24, Bucket.DAY: 30}


@dataclass(frozen=True, slots=True)
class StatsWindow:
    """The runs statistics cover: a filter, bounded to a window of ``queued``."""

    bucket: Bucket
    start: datetime
    """The earliest ``queued`` covered."""
    end: datetime
    """The latest ``queued`` covered."""
    run_filter: RunFilter
    """The filter asked for, bounded to the window."""

    @property
    def buckets(self) -> list[datetime]:
        """The start of every bucket overlapping the window, in order."""
        first, last = floor(self.start, self.bucket), floor(self.end, self.bucket)
        step = self.bucket.step
        return [first + step * i for i in range((last - first) // step + 1)]


def floor(moment: datetime, bucket: Bucket) -> datetime:
    """The start of the bucket holding ``moment``."""
    moment = as_utc(moment)
    step = bucket.step
    return BUCKET_ORIGIN + (moment - BUCKET_ORIGIN) // step * step


def stats_window(
    run_filter: RunFilter | None,
    bucket: Bucket,
    *,
    now: datetime,
    max_buckets: int,
) -> StatsWindow:
    """The window of ``run_filter``'s ``queued_after`` (else ``queued_within``
    before now)/``queued_before``, open ends set to now and to
    ``DEFAULT_BUCKETS`` before it; raises
    ``InvalidQueryError`` if it would hold more than ``max_buckets`` buckets."""
    given = run_filter or RunFilter()
    end = as_utc(given.queued_before) if given.queued_before else as_utc(now)
    if given.queued_after:
        start = as_utc(given.queued_after)
    elif given.queued_within:
        start = as_utc(now) - given.queued_within
    else:
        start = floor(end, bucket) - bucket.step * (DEFAULT_BUCKETS[bucket] - 1)
    if start > end:
        raise InvalidQueryError(
            "the filter's queued-after bound is later than its queued-before bound"
        )
    count = (floor(end, bucket) - floor(start, bucket)) // bucket.step + 1
    if count > max_buckets:
        raise InvalidQueryError(
            f"the window holds {count} {bucket.value.lower()} buckets, more than "
            f"{max_buckets}: narrow the filter's queued-after/queued-before "
            "window, or use wider buckets"
        )
    bounded = RunFilter(
        queued_after=start,
        queued_before=end,
        all_of=None if run_filter is None else [run_filter],
    )
    return StatsWindow(bucket=bucket, start=start, end=end, run_filter=bounded)


@dataclass(frozen=True, slots=True)
class Durations:
    """Seconds from start to end of the finished runs (``None`` without any)."""

    count: int
    min: float | None
    avg: float | None
    p50: float | None
    p95: float | None
    max: float | None
