"""Queries answered by one SQL statement returning the response's JSON.

A validated query whose every field is a run read (``runs``, ``run``,
``node``, ``nodes``, and below them connections, runs, lineage and
``children``) is planned once per document, operation and ``@skip``/
``@include`` variables: the fields collected as graphql-core collects them
(fragments, aliases, directives), in the same order. Each request then
checks its arguments as the resolvers do (page size, cursors, filters), so
an invalid request is answered by Strawberry's execution, with its errors,
and nothing is read here; a valid one reads the statement ``db.json_reads``
builds, and its text becomes the response's ``data`` unparsed.

Anything else (introspection, ``tasks``, statistics, facets, counts with
arguments, ``@defer``) is left to Strawberry's execution.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from graphql.execution import Executor
from graphql.execution.collect_fields import FieldDetailsList, collect_fields
from graphql.execution.values import get_argument_values
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import ExecutionResult
from strawberry.types.arguments import convert_arguments
from strawberry.types.graphql import OperationType

from ..core.paging import PageRequest, RunOrder
from ..core.text import storable
from ..db import json_reads as js
from ..errors import HistoryError
from .context import HistoryContext
from .enums import TaskPriority, TaskRunOrder, TaskState
from .inputs import given
from .paging import page_request

#: Plans kept per process; past this the oldest is dropped.
MAX_PLANS = 256
#: Longest document planned (longer ones run on Strawberry's execution).
MAX_PLANNED_DOCUMENT = 32_768

_RUN_SCALARS = frozenset(
    (
        "id",
        "runId",
        "task",
        "priority",
        "state",
        "queued",
        "start",
        "end",
        "duration",
        "params",
        "retryAttempt",
        "tags",
        "parentRunId",
        "rootRunId",
        "updated",
    )
)
_LINEAGE = {"parent": "from_run_id", "root": "root_run_id"}
_PAGE_INFO = frozenset(("hasNextPage", "hasPreviousPage", "startCursor", "endCursor"))
_DIRECTIVES = frozenset(("skip", "include"))


class RawData(dict[str, Any]):
    """A response's ``data`` as JSON text, written into the response as is."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class _NotCompiled(Exception):  # noqa: N818 (control flow, not an error)
    """The operation, or this request of it, is left to Strawberry."""


# Plans: the fields of an operation, collected once


@dataclass(frozen=True, slots=True)
class _Args:
    """A field whose arguments are read per request."""

    field: GraphQLField
    node: FieldNode


@dataclass(frozen=True, slots=True)
class _Run:
    fields: tuple[
        Any, ...
    ]  # js.Const | js.Scalar | js.ErrorObject | _Lineage | _Connection


@dataclass(frozen=True, slots=True)
class _Lineage:
    key: str
    column: str
    run: _Run


@dataclass(frozen=True, slots=True)
class _Edges:
    key: str
    fields: tuple[Any, ...]  # js.Const | js.Scalar | (key, _Run)


@dataclass(frozen=True, slots=True)
class _Connection:
    key: str
    args: _Args
    fields: tuple[Any, ...]  # js.Const | js.Scalar | _Edges | js.PageInfo
    children: bool


@dataclass(frozen=True, slots=True)
class _ById:
    key: str
    name: str  # run | node | nodes
    args: _Args
    run: _Run


class _Planner:
    """Collects an operation's fields into a plan, or raises ``_NotCompiled``."""

    def __init__(self, schema: GraphQLSchema, executor: Executor[Any]) -> None:
        self.schema = schema
        self.executor = executor
        run_type = schema.get_type("TaskRun")
        assert isinstance(run_type, GraphQLObjectType)
        self.run_type = run_type

    def root(self) -> tuple[Any, ...]:
        executor = self.executor
        query = self.schema.query_type
        assert query is not None
        collected = collect_fields(
            self.schema,
            executor.fragments,
            executor.variable_values,
            query,
            executor.operation,
        )
        planned: list[Any] = []
        for key, details in self._grouped(collected):
            name = details[0].node.name.value
            if name == "__typename":
                planned.append(js.Const(key, query.name))
                continue
            field = query.fields[name]
            args = _Args(field, details[0].node)
            if name == "runs":
                planned.append(self._connection(key, field, details, args, False))
            elif name in ("run", "node", "nodes"):
                planned.append(_ById(key, name, args, self._run(details)))
            else:
                raise _NotCompiled
        return tuple(planned)

    def _grouped(self, collected: Any) -> Iterator[tuple[str, FieldDetailsList]]:
        if collected.new_defer_usages:
            raise _NotCompiled
        for key, details in collected.grouped_field_set.items():
            for detail in details:
                directives = detail.node.directives or ()
                if any(d.name.value not in _DIRECTIVES for d in directives):
                    raise _NotCompiled
            yield key, details

    def _sub(self, kind: GraphQLNamedType, details: FieldDetailsList) -> Any:
        assert isinstance(kind, GraphQLObjectType)
        return kind, self._grouped(self.executor.collect_subfields(kind, details))

    def _run(self, details: FieldDetailsList) -> _Run:
        kind, grouped = self._sub(self.run_type, details)
        planned: list[Any] = []
        for key, sub in grouped:
            name = sub[0].node.name.value
            if name == "__typename":
                planned.append(js.Const(key, kind.name))
            elif name in _RUN_SCALARS:
                planned.append(js.Scalar(key, name))
            elif name in _LINEAGE:
                planned.append(_Lineage(key, _LINEAGE[name], self._run(sub)))
            elif name == "error":
                planned.append(self._error(key, sub))
            elif name == "children":
                field = kind.fields[name]
                args = _Args(field, sub[0].node)
                planned.append(self._connection(key, field, sub, args, True))
            else:
                raise _NotCompiled
        return _Run(tuple(planned))

    def _error(self, key: str, details: FieldDetailsList) -> js.ErrorObject:
        kind, grouped = self._sub(
            get_named_type(self.run_type.fields["error"].type), details
        )
        fields: list[js.Const | js.Scalar] = []
        for sub_key, sub in grouped:
            name = sub[0].node.name.value
            if name == "__typename":
                fields.append(js.Const(sub_key, kind.name))
            else:
                fields.append(js.Scalar(sub_key, name))
        return js.ErrorObject(key, tuple(fields))

    def _connection(
        self,
        key: str,
        field: GraphQLField,
        details: FieldDetailsList,
        args: _Args,
        children: bool,
    ) -> _Connection:
        kind, grouped = self._sub(get_named_type(field.type), details)
        planned: list[Any] = []
        for sub_key, sub in grouped:
            name = sub[0].node.name.value
            if name == "__typename":
                planned.append(js.Const(sub_key, kind.name))
            elif name == "totalCount":
                planned.append(js.Scalar(sub_key, name))
            elif name == "edges":
                planned.append(self._edges(sub_key, kind.fields[name], sub))
            elif name == "pageInfo":
                planned.append(self._page_info(sub_key, kind.fields[name], sub))
            else:
                raise _NotCompiled
        return _Connection(key, args, tuple(planned), children)

    def _edges(
        self, key: str, field: GraphQLField, details: FieldDetailsList
    ) -> _Edges:
        kind, grouped = self._sub(get_named_type(field.type), details)
        planned: list[Any] = []
        for sub_key, sub in grouped:
            name = sub[0].node.name.value
            if name == "__typename":
                planned.append(js.Const(sub_key, kind.name))
            elif name == "cursor":
                planned.append(js.Scalar(sub_key, name))
            else:  # node
                planned.append((sub_key, self._run(sub)))
        return _Edges(key, tuple(planned))

    def _page_info(
        self, key: str, field: GraphQLField, details: FieldDetailsList
    ) -> js.PageInfo:
        kind, grouped = self._sub(get_named_type(field.type), details)
        fields: list[js.Const | js.Scalar] = []
        for sub_key, sub in grouped:
            name = sub[0].node.name.value
            if name == "__typename":
                fields.append(js.Const(sub_key, kind.name))
            elif name in _PAGE_INFO:
                fields.append(js.Scalar(sub_key, name))
            else:
                raise _NotCompiled
        return js.PageInfo(key, tuple(fields))


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

    def arguments(self, args: _Args) -> dict[str, Any]:
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
            if isinstance(item, _Connection):
                found.append(await self.connection(item))
            elif isinstance(item, _ById):
                found.append(await self.by_id(item))
            else:
                found.append(item)
        return tuple(found)

    async def run(self, plan: _Run) -> js.RunSpec:
        found: list[Any] = []
        for item in plan.fields:
            if isinstance(item, _Lineage):
                run = await self.run(item.run)
                found.append(js.Lineage(item.key, item.column, await self.slot(), run))
            elif isinstance(item, _Connection):
                found.append(await self.connection(item))
            else:
                found.append(item)
        return tuple(found)

    async def by_id(self, plan: _ById) -> js.RunById:
        args = self.arguments(plan.args)
        limits = self.service.limits
        if plan.name == "run":
            ids = [args["id"]]
        else:
            ids = [args["id"]] if plan.name == "node" else list(args["ids"])
            if len(ids) > limits.max_page_size:
                raise _NotCompiled  # the resolver's error
            if any(gid.type_name != "TaskRun" for gid in ids):
                raise _NotCompiled
            ids = [gid.node_id for gid in ids]
        slot = await self.slot()
        found = [run_id if storable(run_id) else None for run_id in ids]
        many = plan.name == "nodes"
        if many:
            self.params[f"p{slot}_ids"] = found
        else:
            self.params[f"p{slot}_id"] = found[0]
        return js.RunById(plan.key, slot, await self.run(plan.run), many)

    async def connection(self, plan: _Connection) -> js.Connection:
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
        params[f"p{slot}_size"] = request.limit
        params[f"p{slot}_limit"] = request.limit + 1
        if request.start is not None:
            params[f"p{slot}_start_key"] = request.start.key
            params[f"p{slot}_start_id"] = request.start.id
        flag = "hasNextPage" if request.backward else "hasPreviousPage"
        fields: list[Any] = []
        probe = False
        for item in plan.fields:
            if isinstance(item, _Edges):
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
    """

    _plans: dict[tuple[Any, ...], tuple[Any, ...] | None] = {}

    async def on_execute(self) -> Any:  # an async generator
        context = self.execution_context
        history = context.context
        if (
            isinstance(history, HistoryContext)
            and history.compiled
            and context.graphql_document is not None
            and context.query is not None
            and len(context.query) <= MAX_PLANNED_DOCUMENT
            and context.operation_type is OperationType.QUERY
        ):
            try:
                text = await self._read(history)
            except (_NotCompiled, HistoryError, ValueError, TypeError, KeyError):
                text = None
            if text is not None:
                context.result = ExecutionResult(data=RawData(text), errors=None)
        yield

    async def _read(self, history: HistoryContext) -> str:
        context = self.execution_context
        schema = context.schema
        executor = Executor.build(
            schema._schema,
            context.graphql_document,  # type: ignore[arg-type]
            raw_variable_values=context.variables,
            operation_name=context.operation_name,
        )
        if isinstance(executor, list):
            raise _NotCompiled  # graphql-core reports the variables' errors
        variables = executor.variable_values.coerced
        switches = tuple(
            (name, value)
            for name, value in variables.items()
            if isinstance(value, bool)
        )
        key = (context.query, context.operation_name, switches)
        plans = self._plans
        if key in plans:
            plan = plans[key]
        else:
            try:
                plan = _Planner(schema._schema, executor).root()
            except _NotCompiled:
                plan = None
            if len(plans) >= MAX_PLANS:
                del plans[next(iter(plans))]
            plans[key] = plan
        if plan is None:
            raise _NotCompiled
        request = _Request(schema, executor, history)
        spec = await request.root(plan)
        return await history.service.read_json(
            spec, request.filters, request.params, _RENDERING
        )


def _stored_names(enum: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(member.value.value), member.name) for member in enum)


_RENDERING = (_stored_names(TaskState), _stored_names(TaskPriority))
