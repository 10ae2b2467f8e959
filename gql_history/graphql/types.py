"""Strawberry output types: task runs, their connections and registered tasks.

Run records map straight onto plain fields (no resolver per scalar field);
only lineage and ``totalCount`` resolve lazily, through the request's
DataLoaders. A run's state and priority serialize as stored: each enum
member's value is aio-fluid's.

No ``from __future__ import annotations``: Strawberry reads live annotations.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from fluid.scheduler import Task
from strawberry import relay
from strawberry.scalars import JSON

from ..core.filters import RunFilter
from ..core.paging import EMPTY_PAGE, Page, PageRequest, RunOrder
from ..core.records import RunRecord
from ..errors import InvalidQueryError
from .context import HistoryContext, history_context
from .enums import TaskPriority, TaskRunOrder, TaskState
from .inputs import given
from .paging import page_request

if TYPE_CHECKING:
    from ..service import HistoryService

FirstArg = Annotated[
    int | None,
    strawberry.argument(description="Page forward: at most this many runs."),
]
AfterArg = Annotated[
    str | None,
    strawberry.argument(description="Page forward from this cursor (exclusive)."),
]
LastArg = Annotated[
    int | None,
    strawberry.argument(description="Page backward: at most this many runs."),
]
BeforeArg = Annotated[
    str | None,
    strawberry.argument(description="Page backward from this cursor (exclusive)."),
]


@strawberry.type(description="The exception a run failed with.")
class TaskRunError:
    type: str = strawberry.field(
        description="The exception's type, qualified unless builtin (`ValueError`)."
    )
    message: str = strawberry.field(description="The exception's message.")


@strawberry.type(
    description="One run of a task: its params, timing, outcome and lineage."
)
class TaskRun(relay.Node):
    # A plain field, not relay.Node's resolver: a page has a hundred of them.
    # Encoded as the run is read, the id needs no GlobalID and no coercion.
    id: strawberry.ID = strawberry.field(
        description="The Relay global id of the run (`node` takes it)."
    )
    run_id: str = strawberry.field(description="The aio-fluid run id.")
    task: str = strawberry.field(description="The name of the task.")
    priority: TaskPriority = strawberry.field(description="The run's priority.")
    state: TaskState = strawberry.field(description="The run's latest state.")
    queued: datetime = strawberry.field(description="When the run was queued.")
    start: datetime | None = strawberry.field(
        description="When the run started; null until then."
    )
    end: datetime | None = strawberry.field(
        description="When the run ended; null until then."
    )
    duration: float | None = strawberry.field(
        description="Seconds from start to end; null until the run ends."
    )
    params: JSON = strawberry.field(description="The run's parameters.")
    retry_attempt: int | None = strawberry.field(
        description="Failure retries consumed before this attempt (0 for the first)."
    )
    error: TaskRunError | None = strawberry.field(
        description="The exception the run failed with, if it failed with one."
    )
    tags: list[str] = strawberry.field(description="The task's tags when it ran.")
    parent_run_id: str | None = strawberry.field(
        description="Id of the run that queued this one; null when none did."
    )
    root_run_id: str | None = strawberry.field(
        description="Id of the run that started this run's chain; null for a start."
    )
    updated: datetime | None = strawberry.field(
        description=(
            "When the run was last written (runs written together a "
            "microsecond apart, by id); null if gql_history never wrote it. "
            "`runUpdates` resumes exactly with `after` set to `resumeToken`."
        )
    )
    worker: str | None = strawberry.field(
        description=(
            "The process that wrote the run's latest event (`host:pid:manager`): "
            "the one that queued it until a worker starts it, then that worker; "
            "null if not recorded."
        )
    )
    resume_token: str | None = strawberry.field(
        default=None,
        description=(
            "On a run `runUpdates` sent: the opaque token resuming the stream "
            "right after it (its `after` argument), on any server of the same "
            "database; null elsewhere."
        ),
    )

    @classmethod
    def resolve_id(cls, root: "TaskRun", *, info: strawberry.Info) -> str:
        return root.run_id

    @classmethod
    def from_record(cls, run: RunRecord) -> "TaskRun":
        """The GraphQL run of a run record."""
        error = None
        if run.error_type or run.error_message:
            error = TaskRunError(
                type=run.error_type or "", message=run.error_message or ""
            )
        return cls(
            id=strawberry.ID(relay.to_base64("TaskRun", run.id)),
            run_id=run.id,
            task=run.name,
            priority=run.priority,  # type: ignore[arg-type]
            state=run.state,  # type: ignore[arg-type]
            queued=run.queued,
            start=run.start,
            end=run.end,
            duration=run.duration,
            params=run.params,  # type: ignore[arg-type]
            retry_attempt=run.retry_attempt,
            error=error,
            tags=run.tags or [],
            parent_run_id=run.from_run_id or None,
            root_run_id=run.root_run_id or None,
            updated=run.updated,
            worker=run.worker,
        )

    @strawberry.field(description="The run that queued this one; null when none did.")
    async def parent(self, info: strawberry.Info) -> "TaskRun | None":
        return await load_run(history_context(info), self.parent_run_id)

    @strawberry.field(
        description="The run that started this run's chain; null for a start."
    )
    async def root(self, info: strawberry.Info) -> "TaskRun | None":
        return await load_run(history_context(info), self.root_run_id)

    @strawberry.field(
        description="The runs this run queued, earliest queued first.",
    )
    async def children(
        self,
        info: strawberry.Info,
        first: FirstArg = strawberry.UNSET,
        after: AfterArg = strawberry.UNSET,
        last: LastArg = strawberry.UNSET,
        before: BeforeArg = strawberry.UNSET,
    ) -> "TaskRunConnection":
        context = history_context(info)
        service = context.service
        request = _page_request(
            service, RunOrder.QUEUED_ASC, first, after, last, before
        )
        selected = context.selected(info)
        loaders = context.loaders

        def count() -> Awaitable[int]:
            return loaders.child_count.load(self.run_id)

        page = EMPTY_PAGE
        if _reads_page(selected):
            probe = _needs_probe(request, selected)
            page = await loaders.children.load((self.run_id, request, probe))
        return TaskRunConnection.from_page(
            page,
            request,
            service,
            selected,
            count,
            RunFilter(from_run_id=self.run_id),
        )


#: The largest ``countUpTo`` limit: counting stops there, so stays cheap.
MAX_COUNT_UP_TO = 100_000


@strawberry.type(
    name="TaskRunConnection",
    description="A page of task runs, with Relay cursors.",
)
class TaskRunConnection(relay.Connection[TaskRun]):
    count: strawberry.Private[Callable[[], Awaitable[int]]]
    service: strawberry.Private["HistoryService"]
    run_filter: strawberry.Private[RunFilter | None]

    @strawberry.field(
        description=(
            "How many runs the whole filtered set holds, whatever the cursor "
            "and page size (counted only when asked for)."
        )
    )
    async def total_count(self) -> int:
        return await self.count()

    @strawberry.field(
        description=(
            "The database planner's estimate of `totalCount` (from its "
            "statistics, reading no rows): cheap on any number of runs, exact "
            "only by chance; refreshed as PostgreSQL analyzes the table."
        )
    )
    async def approximate_count(self) -> int:
        return await self.service.approximate_count(self.run_filter)

    @strawberry.field(
        description=(
            "`totalCount`, but counting no further than `limit` (at most "
            f"{MAX_COUNT_UP_TO:,}): `limit` means that many or more, as in "
            '"1,000+ runs".'
        )
    )
    async def count_up_to(
        self,
        limit: Annotated[
            int,
            strawberry.argument(description="Where to stop counting (0 or more)."),
        ],
    ) -> int:
        if not 0 <= limit <= MAX_COUNT_UP_TO:
            raise InvalidQueryError(
                f"`limit` must be between 0 and {MAX_COUNT_UP_TO}, not {limit}"
            )
        return await self.service.count_up_to(self.run_filter, limit)

    @classmethod
    def from_page(
        cls,
        page: Page,
        request: PageRequest,
        service: "HistoryService",
        selected: frozenset[str],
        count: Callable[[], Awaitable[int]],
        run_filter: RunFilter | None,
    ) -> "TaskRunConnection":
        """The connection of ``page``, read as ``request`` asked; cursors are
        encoded only where ``selected``."""
        order, cursor = request.order, service.cursor
        runs = page.runs
        nodes = [TaskRun.from_record(run) for run in runs]
        if "edges.cursor" in selected:
            edges = [
                relay.Edge(cursor=cursor(order, run), node=node)
                for run, node in zip(runs, nodes, strict=True)
            ]
        else:
            edges = [relay.Edge(cursor="", node=node) for node in nodes]
        start_cursor = end_cursor = None
        if runs:
            start_cursor = cursor(order, runs[0])
            end_cursor = cursor(order, runs[-1])
        before, after = page.has_before, page.has_more
        if request.backward:
            before, after = after, before
        return cls(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=after,
                has_previous_page=before,
                start_cursor=start_cursor,
                end_cursor=end_cursor,
            ),
            count=count,
            service=service,
            run_filter=run_filter,
        )


@strawberry.type(description="A task registered with the attached task manager.")
class TaskInfo:
    name: str = strawberry.field(description="The task's unique name.")
    description: str = strawberry.field(description="What the task does.")
    short_description: str = strawberry.field(description="A one-line description.")
    module: str = strawberry.field(description="The Python module defining the task.")
    tags: list[str] = strawberry.field(description="The task's tags, sorted.")
    priority: TaskPriority = strawberry.field(description="The default priority.")
    schedule: str | None = strawberry.field(
        description="When the task runs on its own; null when only queued on demand."
    )
    max_concurrency: int = strawberry.field(
        description="How many runs may execute at once; 0 for no limit."
    )
    timeout_seconds: int = strawberry.field(
        description="How long a run may take before it fails with a timeout."
    )
    cpu_bound: bool = strawberry.field(
        description="Whether runs execute in a separate process."
    )

    @classmethod
    def from_task(cls, task: Task[Any]) -> "TaskInfo":
        """The info of a registered aio-fluid task."""
        return cls(
            name=task.name,
            description=task.description,
            short_description=task.short_description,
            module=task.module,
            tags=sorted(task.tags),
            priority=task.priority,  # type: ignore[arg-type]
            schedule=str(task.schedule) if task.schedule else None,
            max_concurrency=task.max_concurrency,
            timeout_seconds=task.timeout_seconds,
            cpu_bound=task.cpu_bound,
        )


async def run_connection(
    info: strawberry.Info,
    run_filter: RunFilter | None,
    order: TaskRunOrder | None,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> TaskRunConnection:
    """A page of the runs ``run_filter`` matches."""
    context = history_context(info)
    service = context.service
    run_order = cast(RunOrder, (given(order) or TaskRunOrder.QUEUED_DESC).value)
    request = _page_request(service, run_order, first, after, last, before)
    selected = context.selected(info)

    def count() -> Awaitable[int]:
        return service.count(run_filter)

    page = EMPTY_PAGE
    if _reads_page(selected):
        probe = _needs_probe(request, selected)
        page = await service.page(run_filter, request, probe_before=probe)
    return TaskRunConnection.from_page(
        page, request, service, selected, count, run_filter
    )


def _page_request(
    service: "HistoryService",
    order: RunOrder,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> PageRequest:
    """The page a connection field's Relay arguments (possibly unset) ask for."""
    return page_request(
        order=order,
        first=given(first),
        after=given(after),
        last=given(last),
        before=given(before),
        cursors=service.cursors,
        max_page_size=service.limits.max_page_size,
    )


async def load_run(context: HistoryContext, run_id: str | None) -> TaskRun | None:
    """The run with ``run_id`` through the request's loader; None if absent."""
    if not run_id:
        return None
    run = await context.loaders.run.load(run_id)
    return None if run is None else TaskRun.from_record(run)


def _reads_page(selected: frozenset[str]) -> bool:
    return "edges" in selected or "pageInfo" in selected


def _needs_probe(request: PageRequest, selected: frozenset[str]) -> bool:
    """Whether the page flag pointing back past the cursor is asked for."""
    if request.start is None:
        return False
    flag = "hasNextPage" if request.backward else "hasPreviousPage"
    return f"pageInfo.{flag}" in selected
