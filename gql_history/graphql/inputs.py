"""The GraphQL filter input and its translation into a ``RunFilter``.

No ``from __future__ import annotations``: Strawberry reads live annotations.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from fluid import scheduler
from strawberry.scalars import JSON

from ..core.filters import RunFilter, parse_duration
from ..errors import InvalidQueryError
from .enums import TaskPriority, TaskState


@strawberry.input(
    description=(
        "Conditions on task runs: every field given must hold. A field left out "
        "or null leaves runs unconstrained; an empty list matches no run."
    )
)
class TaskRunFilter:
    task: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Runs of any of these task names."
    )
    state: list[TaskState] | None = strawberry.field(
        default=strawberry.UNSET, description="Runs in any of these states."
    )
    priority: list[TaskPriority] | None = strawberry.field(
        default=strawberry.UNSET, description="Runs with any of these priorities."
    )
    queued_after: datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description="Runs queued at or after this time (inclusive).",
    )
    queued_before: datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description="Runs queued at or before this time (inclusive).",
    )
    queued_within: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "Runs queued within this ISO 8601 duration before now, on the "
            'database\'s clock, e.g. `"PT1H"` (the last hour), `"P7D"`, '
            '`"P1DT12H"` (a month counts 30 days, a year 365): a saved view '
            "keeps meaning the latest runs."
        ),
    )
    params: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            'Runs whose params contain this JSON object, e.g. `{"user": "u1"}` '
            "(PostgreSQL JSON containment)."
        ),
    )
    tags: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Runs of tasks carrying any of these tags.",
    )
    error_contains: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "Runs whose error message contains this text, in any case (a "
            "trigram index serves it: PostgreSQL's pg_trgm extension)."
        ),
    )
    search: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "Runs whose task name or error message contains this text (any "
            "case; trigram indexes, pg_trgm), or whose run id starts with it "
            "(a btree index)."
        ),
    )
    parent_run_id: str | None = strawberry.field(
        default=strawberry.UNSET, description="Runs queued by the run with this id."
    )
    root_run_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Runs in the chain started by the run with this id.",
    )
    and_: list["TaskRunFilter"] | None = strawberry.field(
        default=strawberry.UNSET,
        name="and",
        description="Runs matching every one of these filters (`[]` matches all).",
    )
    or_: list["TaskRunFilter"] | None = strawberry.field(
        default=strawberry.UNSET,
        name="or",
        description="Runs matching at least one of these filters (`[]` matches none).",
    )
    not_: "TaskRunFilter | None" = strawberry.field(
        default=strawberry.UNSET,
        name="not",
        description="Runs not matching this filter.",
    )


#: The ``filter`` argument of the fields that select runs.
FilterArg = Annotated[
    TaskRunFilter | None,
    strawberry.argument(description="Which runs; all of them when null."),
]


def run_filter(f: TaskRunFilter | None, *, max_depth: int) -> RunFilter | None:
    """The run filter of ``f``; raises ``InvalidQueryError`` when it is
    malformed or nests combinators more than ``max_depth`` levels deep."""
    f = given(f)
    if f is None:
        return None
    return _convert(f, 1, max_depth)


def given[T](value: T | None) -> T | None:
    """``value``, or ``None`` when the client left it out (``UNSET``)."""
    return None if value is strawberry.UNSET else value


def _convert(f: TaskRunFilter, depth: int, max_depth: int) -> RunFilter:
    if depth > max_depth:
        raise InvalidQueryError(
            f"the filter nests `and`/`or`/`not` more than {max_depth} levels "
            "deep: flatten it"
        )
    params = given(f.params)
    if params is not None and not isinstance(params, Mapping):
        raise InvalidQueryError(
            '`params` must be a JSON object, e.g. {"user": "u1"}, '
            f"not {_json_kind(params)}"
        )
    state, priority, negate = given(f.state), given(f.priority), given(f.not_)
    within = given(f.queued_within)

    def subs(filters: list[TaskRunFilter] | None) -> list[RunFilter] | None:
        if filters is None:
            return None
        return [_convert(sub, depth + 1, max_depth) for sub in filters]

    return RunFilter(
        task=given(f.task),
        state=None
        if state is None
        else [cast(scheduler.TaskState, s.value) for s in state],
        priority=(
            None
            if priority is None
            else [cast(scheduler.TaskPriority, p.value) for p in priority]
        ),
        queued_after=given(f.queued_after),
        queued_before=given(f.queued_before),
        queued_within=None if within is None else parse_duration(within),
        params=params,
        tags=given(f.tags),
        error_contains=given(f.error_contains),
        search=given(f.search),
        from_run_id=given(f.parent_run_id),
        root_run_id=given(f.root_run_id),
        all_of=subs(given(f.and_)),
        any_of=subs(given(f.or_)),
        negate=None if negate is None else _convert(negate, depth + 1, max_depth),
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a scalar"
