"""Resuming live updates exactly: three aio-fluid worker processes write
runs concurrently, two server processes stream them, and a subscriber
reconnects every second, to the other server each time, with the
``resumeToken`` of the last run it got (``tests.live_trial``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.live_trial import run_trial
from tests.services import clear_broker


@pytest.fixture
def broker(redis_url: str) -> Iterator[str]:
    """The workers' broker, whose keys go once the test is done."""
    yield redis_url
    clear_broker(redis_url)


async def test_run_updates_resumed_across_replicas_send_every_change_once(
    database_url: str, broker: str, fresh_table: str
) -> None:
    result = await run_trial(
        database_url, broker, fresh_table, writers=3, reconnects=5, rate=150
    )
    assert result.runs > 300
    assert (result.lost, result.repeated) == ([], 0)
    # each run's versions in the order written: they only move forward
    by_run: dict[str, list[datetime]] = {}
    for run in result.received:
        by_run.setdefault(run["runId"], []).append(
            datetime.fromisoformat(run["updated"])
        )
    assert all(times == sorted(times) for times in by_run.values())
    assert len(by_run) == result.runs
