"""Strawberry output types: task runs, their connections and registered tasks.

Rows map straight onto plain fields (no resolver per scalar field); only
lineage and ``totalCount`` resolve lazily, through the request's DataLoaders.

No ``from __future__ import annotations``: Strawberry reads live annotations.
"""

import operator
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from fluid.scheduler import Task
from strawberry import relay
from strawberry.scalars import JSON

from .context import HistoryContext, history_context
from .cursor import Position
from .enums import TaskPriority, TaskRunOrder, TaskState
from .filters import RunFilter
from .inputs import given
from .paging import PageRequest, page_request
from .store import RUN_COLUMNS, Page, RunOrder

if TYPE_CHECKING:
    from .plugin import TaskHistoryPlugin


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
            "Resume `runUpdates` with it as `since`."
        )
    )

    @classmethod
    def resolve_id(cls, root: "TaskRun", *, info: strawberry.Info) -> str:
        return root.run_id

    @classmethod
    def from_row(cls, row: Any, plugin: "TaskHistoryPlugin") -> "TaskRun":
        """The run of a store row."""
        return cls.from_rows([row], plugin)[0]

    @classmethod
    def from_rows(
        cls, rows: Sequence[Any], plugin: "TaskHistoryPlugin"
    ) -> list["TaskRun"]:
        """The runs of store rows; a row's state and priority serialize as is.

        Rows are read by position, found once for all of them: a page is a
        hundred rows, and reading a row's columns by name costs more.
        """
        if not rows:
            return []
        fields = rows[0]._fields
        columns = operator.itemgetter(*(fields.index(name) for name in RUN_COLUMNS))
        runs = []
        for row in rows:
            (
                run_id,
                name,
                priority,
                state,
                queued,
                start,
                end,
                params,
                from_run_id,
                root_run_id,
                retry_attempt,
                error_type,
                error_message,
                tags,
                updated,
            ) = columns(row)
            error = None
            if error_type or error_message:
                error = TaskRunError(type=error_type or "", message=error_message or "")
            if tags is None:
                tags = plugin.live_tags(name) or []
            runs.append(
                cls(
                    id=strawberry.ID(relay.to_base64("TaskRun", run_id)),
                    run_id=run_id,
                    task=name,
                    priority=priority,
                    state=state,
                    queued=queued,
                    start=start,
                    end=end,
                    duration=(end - start).total_seconds() if start and end else None,
                    params=params if params is not None else {},
                    retry_attempt=retry_attempt,
                    error=error,
                    tags=tags,
                    parent_run_id=from_run_id or None,
                    root_run_id=root_run_id or None,
                    updated=updated,
                )
            )
        return runs

    @strawberry.field(description="The run that queued this one; null when none did.")
    async def parent(self, info: strawberry.Info) -> "TaskRun | None":
        return await _load_run(history_context(info), self.parent_run_id)

    @strawberry.field(
        description="The run that started this run's chain; null for a start."
    )
    async def root(self, info: strawberry.Info) -> "TaskRun | None":
        return await _load_run(history_context(info), self.root_run_id)

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
        plugin = context.plugin
        request = _page_request(plugin, RunOrder.QUEUED_ASC, first, after, last, before)
        selected = context.selected(info)
        loaders = context.loaders

        def count() -> Awaitable[int]:
            return loaders.child_count.load(self.run_id)

        if not _reads_page(selected):
            return TaskRunConnection.from_page(None, request, plugin, selected, count)
        probe = _needs_probe(request, selected)
        page = await loaders.children.load((self.run_id, request, probe))
        return TaskRunConnection.from_page(page, request, plugin, selected, count)


@strawberry.type(
    name="TaskRunConnection",
    description="A page of task runs, with Relay cursors.",
)
class TaskRunConnection(relay.Connection[TaskRun]):
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(
        description=(
            "How many runs the whole filtered set holds, whatever the cursor "
            "and page size (counted only when asked for)."
        )
    )
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    def from_page(
        cls,
        page: Page | None,
        request: PageRequest,
        plugin: "TaskHistoryPlugin",
        selected: frozenset[str],
        count: Callable[[], Awaitable[int]],
    ) -> "TaskRunConnection":
        """The connection of ``page``, read as ``request`` asked; cursors are
        encoded only where ``selected``. No page: nothing but the count asked."""
        if page is None:
            page = Page(rows=(), has_more=False, has_before=False)
        order, encode = request.order, plugin.cursors.encode
        nodes = TaskRun.from_rows(page.rows, plugin)
        if "edges.cursor" in selected:
            edges = [
                relay.Edge(
                    cursor=encode(order, Position(node.queued, node.run_id)), node=node
                )
                for node in nodes
            ]
        else:
            edges = [relay.Edge(cursor="", node=node) for node in nodes]
        start_cursor = end_cursor = None
        if nodes:
            first, last = nodes[0], nodes[-1]
            start_cursor = encode(order, Position(first.queued, first.run_id))
            end_cursor = encode(order, Position(last.queued, last.run_id))
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
    """A page of the runs ``run_filter`` (a store ``RunFilter``) matches."""
    context = history_context(info)
    plugin = context.plugin
    store = plugin.store
    run_order = cast(RunOrder, (given(order) or TaskRunOrder.QUEUED_DESC).value)
    request = _page_request(plugin, run_order, first, after, last, before)
    selected = context.selected(info)

    def count() -> Awaitable[int]:
        return store.count(run_filter)

    if not _reads_page(selected):
        return TaskRunConnection.from_page(None, request, plugin, selected, count)
    page = await store.page(
        run_filter,
        order=request.order,
        limit=request.limit,
        start=request.start,
        backward=request.backward,
        probe_before=_needs_probe(request, selected),
    )
    return TaskRunConnection.from_page(page, request, plugin, selected, count)


def _page_request(
    plugin: "TaskHistoryPlugin",
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
        cursors=plugin.cursors,
        max_page_size=plugin.graphql_limits.max_page_size,
    )


async def _load_run(context: HistoryContext, run_id: str | None) -> TaskRun | None:
    if not run_id:
        return None
    row = await context.loaders.run.load(run_id)
    return None if row is None else TaskRun.from_row(row, context.plugin)


def _reads_page(selected: frozenset[str]) -> bool:
    return "edges" in selected or "pageInfo" in selected


def _needs_probe(request: PageRequest, selected: frozenset[str]) -> bool:
    """Whether the page flag pointing back past the cursor is asked for."""
    if request.start is None:
        return False
    flag = "hasNextPage" if request.backward else "hasPreviousPage"
    return f"pageInfo.{flag}" in selected
