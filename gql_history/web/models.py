"""Pydantic models of the Python and REST read API, field-compatible with
aio-fluid's TaskDbPlugin models."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from fluid.scheduler import TaskPriority, TaskState
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema, field_validator

from ..core.filters import RunFilter, parse_duration
from ..core.paging import RunOrder
from ..core.records import RunRecord
from ..errors import InvalidQueryError

#: The largest page the REST route and ``get_history`` return.
MAX_LIMIT = 500
DEFAULT_LIMIT = 50


#: A time as the REST query takes it: ISO 8601, or a Unix time in seconds
#: (pydantic's reading of a number, kept as TaskDbPlugin's clients send it).
_TIME_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "number", "description": "Unix time in seconds"},
        ]
    }
)
#: ``params`` travels as one query parameter holding a JSON object.
_PARAMS_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "contentMediaType": "application/json",
        "description": 'A JSON object, e.g. {"user": "u1"}',
    }
)


def _as_list(value: Any) -> Any:
    """Accept one value where a list is expected (``task="report"``)."""
    if isinstance(value, str | TaskState | TaskPriority):
        return [value]
    return value


class TaskHistoryQuery(BaseModel):
    """Query parameters for fetching task run history."""

    task: Annotated[
        list[str] | None,
        BeforeValidator(_as_list),
        Query(description="Filter by task name (matches any of the given names)"),
    ] = None
    start: Annotated[
        datetime | None,
        _TIME_SCHEMA,
        Query(
            description="Filter runs queued at or after this time (ISO 8601, "
            "or a Unix time in seconds)"
        ),
    ] = None
    end: Annotated[
        datetime | None,
        _TIME_SCHEMA,
        Query(
            description="Filter runs queued at or before this time (ISO 8601, "
            "or a Unix time in seconds)"
        ),
    ] = None
    queued_within: Annotated[
        str | None,
        Query(
            description="Filter runs queued within this ISO 8601 duration "
            "before now (the database's clock), e.g. PT1H or P7D"
        ),
    ] = None
    state: Annotated[
        list[TaskState] | None,
        BeforeValidator(_as_list),
        Query(description="Filter by task state (matches any of the given states)"),
    ] = None
    priority: Annotated[
        list[TaskPriority] | None,
        BeforeValidator(_as_list),
        Query(description="Filter by priority (matches any of the given priorities)"),
    ] = None
    params: Annotated[
        dict[str, Any] | None,
        _PARAMS_SCHEMA,
        Query(
            description="Filter by params using JSON containment: one "
            'parameter holding a JSON object, e.g. params={"a":2}'
        ),
    ] = None
    tags: Annotated[
        list[str] | None,
        BeforeValidator(_as_list),
        Query(description="Filter runs of tasks carrying any of the given tags"),
    ] = None
    error_contains: Annotated[
        str | None,
        Query(description="Filter runs whose error message contains this text"),
    ] = None
    search: Annotated[
        str | None,
        Query(
            description="Filter runs whose task name or error message contains "
            "this text, or whose id starts with it"
        ),
    ] = None
    order: Annotated[
        RunOrder | None,
        Query(
            description="The order of the runs (QUEUED_DESC by default); runs "
            "without the key (no start or end yet) come last either way"
        ),
    ] = None
    limit: Annotated[
        int | None,
        Query(
            description=f"Maximum number of runs to return ({DEFAULT_LIMIT} "
            f"by default, at most {MAX_LIMIT})",
            ge=1,
            le=MAX_LIMIT,
        ),
    ] = None
    cursor: Annotated[
        str,
        Query(description="Pagination cursor from a previous response"),
    ] = ""

    @field_validator("queued_within")
    @classmethod
    def _check_within(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_duration(value, "queued_within")
            except InvalidQueryError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("params", mode="before")
    @classmethod
    def _parse_params(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(
                    'params must be a JSON object, e.g. {"a": 1}'
                ) from None
        if value is not None and not isinstance(value, dict):
            raise ValueError("params must be a JSON object, not a list or a scalar")
        return value

    def run_filter(self) -> RunFilter:
        """The run filter of this query."""
        return RunFilter(
            task=self.task,
            state=self.state,
            priority=self.priority,
            queued_after=self.start,
            queued_before=self.end,
            queued_within=None
            if self.queued_within is None
            else parse_duration(self.queued_within, "queued_within"),
            params=self.params,
            tags=self.tags,
            error_contains=self.error_contains,
            search=self.search,
        )


class TaskRunHistory(BaseModel):
    """A recorded task run, with its parameters, timing, lineage and error."""

    id: str = Field(..., description="The unique ID of the task run")
    task: str = Field(..., description="The name of the task")
    priority: TaskPriority = Field(..., description="The priority of the task")
    state: TaskState = Field(..., description="The state of the task")
    queued: datetime = Field(..., description="The time the task was queued")
    start: datetime | None = Field(None, description="The start time of the task")
    end: datetime | None = Field(None, description="The end time of the task")
    params: dict[str, Any] = Field(..., description="The parameters of the task run")
    from_run_id: str | None = Field(
        None, description="ID of the run that queued this one; empty for none"
    )
    root_run_id: str | None = Field(
        None, description="ID of the run that started the chain; empty for none"
    )
    retry_attempt: int | None = Field(
        None, description="Failure retries consumed before this attempt"
    )
    error_type: str | None = Field(
        None, description="Type of the exception the run failed with"
    )
    error_message: str | None = Field(
        None, description="Message of the exception the run failed with"
    )
    tags: list[str] = Field(
        default_factory=list, description="Tags the task carried when it ran"
    )
    worker: str | None = Field(
        None,
        description="The process that wrote the run's latest event (host:pid:manager)",
    )

    @classmethod
    def from_record(cls, run: RunRecord) -> TaskRunHistory:
        """The model of a run record."""
        return cls(
            id=run.id,
            task=run.name,
            priority=run.priority,
            state=run.state,
            queued=run.queued,
            start=run.start,
            end=run.end,
            params=run.params,
            from_run_id=run.from_run_id,
            root_run_id=run.root_run_id,
            retry_attempt=run.retry_attempt,
            error_type=run.error_type,
            error_message=run.error_message,
            tags=run.tags or [],
            worker=run.worker,
        )


class TaskRunHistoryPage(BaseModel):
    """A page of task run history records."""

    data: list[TaskRunHistory] = Field(..., description="The task run history records")
    cursor: str = Field(
        ..., description="Pagination cursor to fetch the next page; empty on the last"
    )
