"""The Query root and the schema, with the Subscription root of
``subscriptions``: ``schema`` is the default one, which
``strawberry export-schema gql_history.schema:schema`` prints.

No ``from __future__ import annotations``: Strawberry reads live annotations.
"""

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Annotated

import strawberry
from graphql import GraphQLError, NoSchemaIntrospectionCustomRule
from graphql.validation import ASTValidationRule
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import (
    create_validator as depth_rule,
)

from .context import history_context
from .enums import StatsBucket, TaskRunOrder
from .errors import InvalidQueryError
from .execution import BulkExecutionContext, bulk_supported
from .inputs import FilterArg, TaskRunFilter, given
from .limits import QueryLimits
from .masking import ErrorCodes, HistorySchema
from .overview import (
    TagCount,
    TaskCount,
    TaskRunStats,
    run_stats,
    task_names,
    task_tags,
)
from .subscriptions import Subscription
from .types import (
    AfterArg,
    BeforeArg,
    FirstArg,
    LastArg,
    TaskInfo,
    TaskRun,
    TaskRunConnection,
    run_connection,
)

#: Parsed and validated documents kept per process (clients repeat queries).
_DOCUMENT_CACHE_SIZE = 256


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
        context = history_context(info)
        row = await context.loaders.run.load(id)
        return None if row is None else TaskRun.from_row(row, context.plugin)

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
        most = history_context(info).plugin.graphql_limits.max_page_size
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
        task_manager = history_context(info).plugin.task_manager
        if task_manager is None:
            return []
        registry = task_manager.registry
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
            context.plugin,
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
        return await task_names(context.plugin, context.run_filter(filter))

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
        return await task_tags(context.plugin, context.run_filter(filter))


async def _load_node(
    info: strawberry.Info, global_id: relay.GlobalID
) -> TaskRun | None:
    if global_id.type_name != TaskRun.__name__:
        raise InvalidQueryError(
            f"no object type {global_id.type_name!r}: global ids here are TaskRun ids"
        )
    context = history_context(info)
    row = await context.loaders.run.load(global_id.node_id)
    return None if row is None else TaskRun.from_row(row, context.plugin)


class _ParserCache(ParserCache):
    """Strawberry's ParserCache, leaving a document that fails to parse to
    Strawberry's own parse, which reports the error as a result (the stock
    extension raises it from its hook, past the other extensions)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        yield


_DEFAULT_LIMITS = QueryLimits()


@functools.cache
def build_schema(limits: QueryLimits = _DEFAULT_LIMITS) -> strawberry.Schema:
    """The schema enforcing ``limits`` (one per distinct limits, cached)."""
    rules: list[type[ASTValidationRule]] = [
        depth_rule(limits.max_depth, should_ignore=None),
        aliases_rule(limits.max_aliases),
    ]
    if not limits.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    # Factories build per-request extensions around rule classes made once,
    # so the validation cache recognises the same rules on every request.
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        ErrorCodes,
        functools.partial(MaxTokensLimiter, limits.max_tokens),
        functools.partial(_ParserCache, _DOCUMENT_CACHE_SIZE),
        functools.partial(AddValidationRules, rules),
        functools.partial(ValidationCache, _DOCUMENT_CACHE_SIZE),
    ]
    return HistorySchema(
        query=Query,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=(BulkExecutionContext if bulk_supported() else None),
    )


schema = build_schema()
