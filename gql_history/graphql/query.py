"""The Query root: runs, a run by id or global id, registered tasks,
statistics and filter facets.

No ``from __future__ import annotations``: Strawberry reads live annotations.
"""

import asyncio
from typing import Annotated

import strawberry
from strawberry import relay

from ..errors import InvalidQueryError
from .context import history_context
from .enums import StatsBucket, TaskRunOrder
from .inputs import FilterArg, TaskRunFilter, given
from .stats import TagCount, TaskCount, TaskRunStats, run_stats, task_names, task_tags
from .types import (
    AfterArg,
    BeforeArg,
    FirstArg,
    LastArg,
    TaskInfo,
    TaskRun,
    TaskRunConnection,
    load_run,
    run_connection,
)


@strawberry.type(description="Task-run history recorded by gql_history.")
class Query:
    @strawberry.field(
        description="Task runs matching `filter`, a page at a time (Relay cursors)."
    )
    async def runs(
        self,
        info: strawberry.Info,
        filter: FilterArg = strawberry.UNSET,
        order_by: Annotated[
            TaskRunOrder | None,
            strawberry.argument(
                description="The order of the runs; cursors keep to it."
            ),
        ] = TaskRunOrder.QUEUED_DESC,
        first: FirstArg = strawberry.UNSET,
        after: AfterArg = strawberry.UNSET,
        last: LastArg = strawberry.UNSET,
        before: BeforeArg = strawberry.UNSET,
    ) -> TaskRunConnection:
        return await run_connection(
            info,
            history_context(info).run_filter(filter),
            order_by,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(description="The run with this aio-fluid run id; null if absent.")
    async def run(
        self,
        info: strawberry.Info,
        id: Annotated[str, strawberry.argument(description="An aio-fluid run id.")],
    ) -> TaskRun | None:
        return await load_run(history_context(info), id)

    @strawberry.field(description="The object with this global id; null if absent.")
    async def node(
        self,
        info: strawberry.Info,
        id: Annotated[
            relay.GlobalID, strawberry.argument(description="A Relay global id.")
        ],
    ) -> relay.Node | None:
        return await _load_node(info, id)

    @strawberry.field(
        description="The objects with these global ids, in order; null where absent."
    )
    async def nodes(
        self,
        info: strawberry.Info,
        ids: Annotated[
            list[relay.GlobalID],
            strawberry.argument(description="Relay global ids."),
        ],
    ) -> list[relay.Node | None]:
        most = history_context(info).service.limits.max_page_size
        if len(ids) > most:
            raise InvalidQueryError(
                f"`ids` may hold at most {most} ids, not {len(ids)}"
            )
        return list(await asyncio.gather(*(_load_node(info, gid) for gid in ids)))

    @strawberry.field(
        description=(
            "The tasks registered with the attached task manager, by name; "
            "empty when the history is served without one."
        )
    )
    def tasks(self, info: strawberry.Info) -> list[TaskInfo]:
        registry = history_context(info).service.tasks.registry
        return [TaskInfo.from_task(registry[name]) for name in sorted(registry)]

    @strawberry.field(
        description=(
            "Statistics of the runs matching `filter` queued within its window "
            "(see `TaskRunStats`); only the parts selected are computed."
        )
    )
    def run_stats(
        self,
        info: strawberry.Info,
        filter: Annotated[
            TaskRunFilter | None,
            strawberry.argument(
                description="Which runs; its `queuedAfter`/`queuedBefore` set "
                "the window."
            ),
        ] = strawberry.UNSET,
        bucket: Annotated[
            StatsBucket | None,
            strawberry.argument(
                description="The width of `series` buckets; HOUR when null."
            ),
        ] = strawberry.UNSET,
    ) -> TaskRunStats:
        context = history_context(info)
        return run_stats(
            context.service,
            context.run_filter(filter),
            given(bucket) or StatsBucket.HOUR,
        )

    @strawberry.field(
        description=(
            "The task names of the runs matching `filter`, each with its number "
            "of runs, most first (the 1,000 commonest): a task dropdown."
        )
    )
    async def task_names(
        self,
        info: strawberry.Info,
        filter: FilterArg = strawberry.UNSET,
    ) -> list[TaskCount]:
        context = history_context(info)
        return await task_names(context.service, context.run_filter(filter))

    @strawberry.field(
        description=(
            "The tags of the runs matching `filter`, each with its number of "
            "runs, most first (the 1,000 commonest): a tag dropdown."
        )
    )
    async def task_tags(
        self,
        info: strawberry.Info,
        filter: FilterArg = strawberry.UNSET,
    ) -> list[TagCount]:
        context = history_context(info)
        return await task_tags(context.service, context.run_filter(filter))


async def _load_node(
    info: strawberry.Info, global_id: relay.GlobalID
) -> TaskRun | None:
    if global_id.type_name != TaskRun.__name__:
        raise InvalidQueryError(
            f"no object type {global_id.type_name!r}: global ids here are TaskRun ids"
        )
    return await load_run(history_context(info), global_id.node_id)
