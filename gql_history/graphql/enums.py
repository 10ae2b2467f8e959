"""GraphQL enums: aio-fluid's states and priorities in UPPER_CASE, run orders
and statistics buckets.

Each member's value is the aio-fluid (or store) value itself, so a stored row's
``state`` or ``priority`` serializes without conversion and a filter's
members turn into store values with ``.value``.

No ``from __future__ import annotations``: Strawberry reads live annotations.
"""

import enum

import strawberry
from fluid import scheduler

from ..core.paging import RunOrder
from ..core.windows import Bucket


@strawberry.enum(name="TaskState", description="The lifecycle state of a task run.")
class TaskState(enum.Enum):
    INIT = strawberry.enum_value(
        scheduler.TaskState.init, description="Created but not yet queued."
    )
    QUEUED = strawberry.enum_value(
        scheduler.TaskState.queued, description="Waiting in the queue for a worker."
    )
    RUNNING = strawberry.enum_value(
        scheduler.TaskState.running, description="Being executed by a worker."
    )
    SUCCESS = strawberry.enum_value(
        scheduler.TaskState.success, description="Finished without error."
    )
    FAILURE = strawberry.enum_value(
        scheduler.TaskState.failure,
        description="Finished with an exception (see `error`).",
    )
    ABORTED = strawberry.enum_value(
        scheduler.TaskState.aborted, description="Cancelled before completion."
    )
    RATE_LIMITED = strawberry.enum_value(
        scheduler.TaskState.rate_limited,
        description="Not run because the task's concurrency limit was reached.",
    )
    INTERRUPTED = strawberry.enum_value(
        scheduler.TaskState.interrupted,
        description="Stopped by a worker shutdown before it could complete.",
    )


@strawberry.enum(name="TaskPriority", description="The priority a task is queued with.")
class TaskPriority(enum.Enum):
    HIGH = strawberry.enum_value(
        scheduler.TaskPriority.high, description="Executed before medium and low."
    )
    MEDIUM = strawberry.enum_value(
        scheduler.TaskPriority.medium, description="The default priority."
    )
    LOW = strawberry.enum_value(
        scheduler.TaskPriority.low, description="Executed after high and medium."
    )


@strawberry.enum(
    name="TaskRunOrder",
    description=(
        "The order of a connection of runs; ties on the key break by id. Runs "
        "without the key (no `start` or `end` yet, so no `duration`) come last "
        "in both directions. Each order is served by an index of its own."
    ),
)
class TaskRunOrder(enum.Enum):
    QUEUED_DESC = strawberry.enum_value(
        RunOrder.QUEUED_DESC, description="Most recently queued first."
    )
    QUEUED_ASC = strawberry.enum_value(
        RunOrder.QUEUED_ASC, description="Earliest queued first."
    )
    START_DESC = strawberry.enum_value(
        RunOrder.START_DESC,
        description="Most recently started first; runs not started last.",
    )
    START_ASC = strawberry.enum_value(
        RunOrder.START_ASC, description="Earliest started first; runs not started last."
    )
    END_DESC = strawberry.enum_value(
        RunOrder.END_DESC, description="Most recently ended first; runs not ended last."
    )
    END_ASC = strawberry.enum_value(
        RunOrder.END_ASC, description="Earliest ended first; runs not ended last."
    )
    DURATION_DESC = strawberry.enum_value(
        RunOrder.DURATION_DESC,
        description="Slowest first; runs without a duration (not ended) last.",
    )
    DURATION_ASC = strawberry.enum_value(
        RunOrder.DURATION_ASC,
        description="Fastest first; runs without a duration (not ended) last.",
    )


@strawberry.enum(
    name="StatsBucket",
    description="The width of the time buckets of a `runStats` series (UTC).",
)
class StatsBucket(enum.Enum):
    MINUTE = strawberry.enum_value(Bucket.MINUTE, description="One minute.")
    HOUR = strawberry.enum_value(Bucket.HOUR, description="One hour.")
    DAY = strawberry.enum_value(Bucket.DAY, description="One day, from midnight UTC.")
