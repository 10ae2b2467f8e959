"""The run record: a run's fields, defined once.

The table's columns, the upsert, the REST model and the GraphQL type are all
mapped from ``RunRecord``; the column of each field has the field's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from fluid.scheduler import TaskState

#: Lifecycle rank of each state: a write never replaces a higher rank.
STATE_RANK: dict[TaskState, int] = {
    TaskState.init: 0,
    TaskState.queued: 1,
    TaskState.running: 3,
}
FINISHED_RANK = 4
#: The ``error_type`` of a run the history marked ``interrupted`` itself: its
#: worker went silent, or it ran past its timeout with no end recorded.
LOST_ERROR_TYPE = "gql_history.RunLost"
#: The rank of such a run: above queued, below running, so that an event of
#: a worker marked dead but alive after all (it runs, it ended) corrects it.
LOST_RANK = 2


@dataclass(slots=True)
class RunRecord:
    """One run as the history stores it."""

    id: str
    name: str
    """The task's name."""
    priority: str
    state: TaskState
    queued: datetime
    start: datetime | None
    end: datetime | None
    params: dict[str, Any]
    from_run_id: str
    """The run that queued this one; empty (or None when read) for none."""
    root_run_id: str
    """The run that started the chain; empty (or None when read) for none."""
    retry_attempt: int
    """Failure retries consumed before this attempt (None in old rows)."""
    error_type: str | None
    error_message: str | None
    tags: list[str] | None
    """The task's tags when it ran; None when not stored."""
    updated: datetime | None = None
    """When the history last wrote the run; set by the database."""
    worker: str | None = None
    """The process that wrote the run's latest event (``host:pid:manager``)."""

    @property
    def progress(self) -> tuple[int, int]:
        """How far the run has gone: later attempts, then later states, win."""
        if self.state is TaskState.interrupted and self.error_type == LOST_ERROR_TYPE:
            return self.retry_attempt or 0, LOST_RANK
        return self.retry_attempt or 0, STATE_RANK.get(self.state, FINISHED_RANK)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None until the run ends."""
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()


#: The names of a run's fields, in order: the columns every read selects.
RUN_FIELDS: tuple[str, ...] = tuple(field.name for field in fields(RunRecord))


def furthest(records: Iterable[RunRecord]) -> list[RunRecord]:
    """One record per run, the one that went furthest (the first among equals)."""
    by_id: dict[str, RunRecord] = {}
    for record in records:
        current = by_id.get(record.id)
        if current is None or record.progress > current.progress:
            by_id[record.id] = record
    return list(by_id.values())
