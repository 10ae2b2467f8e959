from __future__ import annotations

from datetime import timedelta

from fluid.scheduler import TaskPriority, TaskState

from gql_history.graphql.types import TaskRun, TaskRunError
from gql_history.web.models import TaskRunHistory
from tests.factories import T0, run_record

FAILED = run_record(
    "r1",
    name="report",
    state=TaskState.failure,
    start=T0,
    end=T0 + timedelta(seconds=3),
    params={"user": "u1"},
    from_run_id="p1",
    error_type="ValueError",
    error_message="boom",
    tags=["ops"],
)


def test_models_rest_maps_every_field_of_a_record() -> None:
    assert TaskRunHistory.from_record(FAILED) == TaskRunHistory(
        id="r1",
        task="report",
        priority=TaskPriority.medium,
        state=TaskState.failure,
        queued=T0,
        start=T0,
        end=T0 + timedelta(seconds=3),
        params={"user": "u1"},
        from_run_id="p1",
        root_run_id="",
        retry_attempt=0,
        error_type="ValueError",
        error_message="boom",
        tags=["ops"],
    )


def test_models_graphql_maps_lineage_error_and_duration() -> None:
    run = TaskRun.from_record(FAILED)
    assert (run.run_id, run.task, run.duration, run.error) == (
        "r1",
        "report",
        3.0,
        TaskRunError(type="ValueError", message="boom"),
    )
    assert (run.parent_run_id, run.root_run_id, run.tags) == ("p1", None, ["ops"])
