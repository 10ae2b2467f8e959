from __future__ import annotations

from dataclasses import fields, replace
from datetime import timedelta

from fluid.scheduler import TaskState

from gql_history.core.records import LOST_ERROR_TYPE, RUN_FIELDS, RunRecord, furthest
from gql_history.db.tables import history_table
from tests.factories import T0, run_record


def test_records_fields_are_the_tables_columns() -> None:
    import sqlalchemy as sa

    table = history_table(sa.MetaData())
    assert tuple(field.name for field in fields(RunRecord)) == RUN_FIELDS
    # and the live stream's bookkeeping, no field of a run
    stream = {"xact_id", "xact_horizon"}
    assert set(RUN_FIELDS) == {column.name for column in table.columns} - stream


def test_records_furthest_keeps_the_latest_state_and_attempt_per_run() -> None:
    queued = run_record("a")
    running = replace(queued, state=TaskState.running, start=T0)
    done = replace(running, state=TaskState.success, end=T0 + timedelta(seconds=2))
    retried = replace(queued, retry_attempt=1)
    other = run_record("b")
    assert furthest([done, queued, running, other]) == [done, other]
    assert furthest([done, retried]) == [retried]
    assert furthest([queued, replace(queued, params={"x": 1})]) == [queued]


def test_records_duration_is_none_until_the_run_ends() -> None:
    run = run_record("a", start=T0)
    assert run.duration is None
    assert replace(run, end=T0 + timedelta(seconds=1.5)).duration == 1.5


def test_records_a_lost_run_ranks_between_queued_and_running() -> None:
    queued = run_record("a")
    lost = replace(queued, state=TaskState.interrupted, error_type=LOST_ERROR_TYPE)
    running = replace(queued, state=TaskState.running, start=T0)
    shutdown = replace(running, state=TaskState.interrupted)  # aio-fluid's own
    assert queued.progress < lost.progress < running.progress < shutdown.progress
