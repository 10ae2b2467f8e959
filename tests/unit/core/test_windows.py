from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gql_history.core.filters import RunFilter
from gql_history.core.windows import Bucket, floor, stats_window
from gql_history.errors import InvalidQueryError

NOW = datetime(2026, 3, 1, 10, 30, 15, tzinfo=UTC)


def test_windows_floor_aligns_on_utc_buckets() -> None:
    assert floor(NOW, Bucket.MINUTE) == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert floor(NOW, Bucket.HOUR) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert floor(NOW, Bucket.DAY) == datetime(2026, 3, 1, tzinfo=UTC)


def test_windows_open_filter_covers_the_default_buckets_up_to_now() -> None:
    window = stats_window(None, Bucket.HOUR, now=NOW, max_buckets=1000)
    assert (window.start, window.end) == (
        datetime(2026, 2, 28, 11, tzinfo=UTC),
        NOW,
    )
    assert len(window.buckets) == 24
    assert window.run_filter == RunFilter(
        queued_after=window.start, queued_before=NOW, all_of=None
    )


def test_windows_refuse_more_buckets_than_allowed() -> None:
    wide = RunFilter(queued_after=NOW - timedelta(days=2), queued_before=NOW)
    with pytest.raises(InvalidQueryError, match="2881 minute buckets, more than 1000"):
        stats_window(wide, Bucket.MINUTE, now=NOW, max_buckets=1000)


def test_windows_refuse_a_start_after_the_end() -> None:
    backwards = RunFilter(queued_after=NOW, queued_before=NOW - timedelta(hours=1))
    with pytest.raises(InvalidQueryError, match="later than its queued-before"):
        stats_window(backwards, Bucket.HOUR, now=NOW, max_buckets=1000)
