"""Queries answered by one SQL statement returning the response's JSON.

A validated query whose every field is a run read (``runs``, ``run``,
``node``, ``nodes``, and below them connections, runs, lineage and
``children``) is planned once (``plan``). Each request then checks its
arguments as the resolvers do (page size, cursors, filters), so an invalid
request is answered by Strawberry's execution, with its errors, and nothing
is read here; a valid one reads the statement ``db.json_reads`` builds, and
its text becomes the response's ``data`` unparsed.

Anything else (introspection, ``tasks``, statistics, facets, counts with
arguments, ``@defer``) is left to Strawberry's execution.

A document answered so is kept as prepared: the HTTP router answers later
requests of the same text with ``answer_prepared``, without Strawberry's
request pipeline, checking again what depends on their variables.
"""

from __future__ import annotations

from typing import Any, cast

from graphql import DocumentNode
from graphql.execution import Executor
from graphql.execution.values import get_argument_values
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import ExecutionResult
from strawberry.types.arguments import convert_arguments
from strawberry.types.graphql import OperationType

from ..core.paging import PageRequest, RunOrder
from ..core.text import storable
from ..db import json_specs as js
from ..errors import HistoryError
from .context import HistoryContext
from .cost import check_operation
from .enums import TaskPriority, TaskRunOrder, TaskState
from .inputs import given
from .paging import page_request
from .plan import (
    ArgsPlan,
    ByIdPlan,
    ConnectionPlan,
    EdgesPlan,
    LineagePlan,
    NotCompiled,
    Planner,
    RunPlan,
)

#: Plans kept per process; past this the oldest is dropped.
MAX_PLANS = 256
#: Longest document planned (longer ones run on Strawberry's execution).
MAX_PLANNED_DOCUMENT = 32_768


class RawData(dict[str, Any]):
    """A response's ``data`` as JSON text, written into the response as is."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


# Requests: a plan's arguments checked, its reads numbered and bound


class _Request:
    """One request of a plan: the spec, the parameters and each slot's filter."""

    def __init__(
        self, schema: Any, executor: Executor[Any], context: HistoryContext
    ) -> None:
        self.schema = schema
        self.executor = executor
        self.context = context
        self.service = context.service
        self.params: dict[str, Any] = {}
        self.filters: dict[int, Any] = {}
        self._scope: Any = None

    def arguments(self, args: ArgsPlan) -> dict[str, Any]:
        """The field's arguments as its resolver gets them."""
        values = get_argument_values(
            args.field, args.node, self.executor.variable_values
        )
        definition = args.field.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]
        converter = self.schema.schema_converter
        return convert_arguments(
            values,
            definition.arguments,
            scalar_registry=converter.scalar_registry,
            config=self.schema.config,
        )

    async def slot(self, run_filter: Any = None, *, scope_only: bool = True) -> int:
        """A new slot reading ``run_filter`` within the scope."""
        slot = len(self.filters)
        if scope_only:
            if self._scope is None:
                self._scope = await self.service.bound(None)
            bound = self._scope
        else:
            bound = await self.service.bound(run_filter)
        self.filters[slot] = bound
        for name, value in bound.values.items():
            self.params[f"p{slot}_{name}"] = value
        return slot

    async def root(self, plan: tuple[Any, ...]) -> js.RootSpec:
        found: list[Any] = []
        for item in plan:
            if isinstance(item, ConnectionPlan):
                found.append(await self.connection(item))
            elif isinstance(item, ByIdPlan):
                found.append(await self.by_id(item))
            else:
                found.append(item)
        return tuple(found)

    async def run(self, plan: RunPlan) -> js.RunSpec:
        found: list[Any] = []
        for item in plan.fields:
            if isinstance(item, LineagePlan):
                run = await self.run(item.run)
                found.append(js.Lineage(item.key, item.column, await self.slot(), run))
            elif isinstance(item, ConnectionPlan):
                found.append(await self.connection(item))
            else:
                found.append(item)
        return tuple(found)

    async def by_id(self, plan: ByIdPlan) -> js.RunById:
        args = self.arguments(plan.args)
        limits = self.service.limits
        if plan.name == "run":
            ids = [args["id"]]
        else:
            ids = [args["id"]] if plan.name == "node" else list(args["ids"])
            if len(ids) > limits.max_page_size:
                raise NotCompiled  # the resolver's error
            if any(gid.type_name != "TaskRun" for gid in ids):
                raise NotCompiled
            ids = [gid.node_id for gid in ids]
        slot = await self.slot()
        found = [run_id if storable(run_id) else None for run_id in ids]
        many = plan.name == "nodes"
        if many:
            self.params[f"p{slot}_ids"] = found
        else:
            self.params[f"p{slot}_id"] = found[0]
        return js.RunById(plan.key, slot, await self.run(plan.run), many)

    async def connection(self, plan: ConnectionPlan) -> js.Connection:
        args = self.arguments(plan.args)
        service = self.service
        if plan.children:
            order = RunOrder.QUEUED_ASC
            run_filter = None
        else:
            order_by = given(args.get("order_by")) or TaskRunOrder.QUEUED_DESC
            order = cast(RunOrder, order_by.value)
            run_filter = self.context.run_filter(args.get("filter"))
        request: PageRequest = page_request(
            order=order,
            first=given(args.get("first")),
            after=given(args.get("after")),
            last=given(args.get("last")),
            before=given(args.get("before")),
            cursors=service.cursors,
            max_page_size=service.limits.max_page_size,
        )
        slot = await self.slot(run_filter, scope_only=plan.children)
        params = self.params
        if request.start is not None:
            params[f"p{slot}_start_key"] = request.start.key
            params[f"p{slot}_start_id"] = request.start.id
        flag = "hasNextPage" if request.backward else "hasPreviousPage"
        fields: list[Any] = []
        probe = False
        for item in plan.fields:
            if isinstance(item, EdgesPlan):
                edge_fields: list[Any] = []
                for edge in item.fields:
                    if isinstance(edge, tuple):
                        edge = js.Node(edge[0], await self.run(edge[1]))
                    edge_fields.append(edge)
                fields.append(js.Edges(item.key, tuple(edge_fields)))
                continue
            if isinstance(item, js.PageInfo):
                probe = probe or any(
                    isinstance(f, js.Scalar) and f.field == flag for f in item.fields
                )
            fields.append(item)
        return js.Connection(
            plan.key,
            slot,
            tuple(fields),
            size=request.limit,
            order=request.order,
            backward=request.backward,
            has_start=request.start is not None,
            probe=probe and request.start is not None,
            children=plan.children,
        )


class CompiledQueries(SchemaExtension):
    """Answers the queries it can plan with one SQL statement (see the
    module), before graphql-core executes them; the others pass through.

    It runs after the limits' checks (last in the schema's extensions) and
    only where the request's ``HistoryContext`` asks for it (``compiled``).
    A query it answers is kept as prepared (``answer_prepared``).
    """

    async def on_execute(self) -> Any:  # an async generator
        context = self.execution_context
        history = context.context
        document = context.graphql_document
        query = context.query
        if (
            isinstance(history, HistoryContext)
            and history.compiled
            and document is not None
            and query is not None
            and len(query) <= MAX_PLANNED_DOCUMENT
            and context.operation_type is OperationType.QUERY
        ):
            schema = context.schema
            # the name as sent, as a prepared request has it: one plan for both
            name = getattr(context, "_provided_operation_name", None)
            try:
                text = await _read(
                    schema, query, document, name, context.variables, history
                )
            except (NotCompiled, HistoryError, ValueError, TypeError, KeyError):
                text = None
            if text is not None:
                context.result = ExecutionResult(data=RawData(text), errors=None)
                _remember(_prepared, (id(schema), query, name), document)
        yield


#: Plans by (schema, document text, operation name, Boolean variable values).
_plans: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}
#: Documents the extension answered, by (schema, document text, operation
#: name as sent): parsed, validated and within every limit that does not
#: depend on the variables.
_prepared: dict[tuple[Any, ...], DocumentNode] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value`` under ``key``, dropping the oldest past ``MAX_PLANS``."""
    if key not in cache and len(cache) >= MAX_PLANS:
        del cache[next(iter(cache))]
    cache[key] = value


async def answer_prepared(
    schema: Any,
    query: str,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    history: HistoryContext,
) -> str | None:
    """The ``data`` text of a query the extension answered before, read
    without Strawberry's request pipeline; None to run the request through
    it (a query not prepared, variables over a limit or not valid, or any
    failure: the pipeline then answers, with its coded errors).

    What the pipeline checked of the document holds for its text; what
    depends on the variables (their count, the cost) is checked here, as
    ``OperationLimits`` checks it.
    """
    document = _prepared.get((id(schema), query, operation_name))
    if document is None or not history.compiled:
        return None
    try:
        check_operation(history.service.limits, document, operation_name, variables)
        return await _read(schema, query, document, operation_name, variables, history)
    except Exception:  # the pipeline answers, errors and all
        return None


async def _read(
    schema: Any,
    query: str,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    history: HistoryContext,
) -> str:
    """The ``data`` text of the operation (``document``, parsed from
    ``query``), read in one statement; raises ``NotCompiled`` if the
    operation cannot be planned."""
    executor = Executor.build(
        schema._schema,
        document,
        raw_variable_values=variables,
        operation_name=operation_name,
    )
    if isinstance(executor, list):
        raise NotCompiled  # graphql-core reports the variables' errors
    coerced = executor.variable_values.coerced
    switches = tuple(
        (name, value) for name, value in coerced.items() if isinstance(value, bool)
    )
    key = (id(schema), query, operation_name, switches)
    if key in _plans:
        plan = _plans[key]
    else:
        try:
            plan = Planner(schema._schema, executor).root()
        except NotCompiled:
            plan = None
        _remember(_plans, key, plan)
    if plan is None:
        raise NotCompiled
    request = _Request(schema, executor, history)
    spec = await request.root(plan)
    return await history.service.read_json(
        spec, request.filters, request.params, _RENDERING
    )


def _stored_names(enum: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(member.value.value), member.name) for member in enum)


_RENDERING = (_stored_names(TaskState), _stored_names(TaskPriority))
