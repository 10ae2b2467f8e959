"""Plans of GraphQL queries compiled to SQL: the fields of an operation,
collected once per document, operation and ``@skip``/``@include``
variables, as graphql-core collects them (fragments, aliases, directives,
their order), with what each field reads; ``NotCompiled`` for anything the
compiler does not cover."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

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

from ..db import json_specs as js

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
        "worker",
    )
)
#: Plans a field with a selection: its response key, definition, details.
Nested = Callable[[str, GraphQLField, FieldDetailsList], Any]
_LINEAGE = {"parent": "from_run_id", "root": "root_run_id"}
_PAGE_INFO = frozenset(("hasNextPage", "hasPreviousPage", "startCursor", "endCursor"))
_DIRECTIVES = frozenset(("skip", "include"))


class NotCompiled(Exception):  # noqa: N818 (control flow, not an error)
    """The operation, or this request of it, is left to Strawberry."""


# Plans: the fields of an operation, collected once


@dataclass(frozen=True, slots=True)
class ArgsPlan:
    """A field whose arguments are read per request."""

    field: GraphQLField
    node: FieldNode


@dataclass(frozen=True, slots=True)
class RunPlan:
    fields: tuple[
        Any, ...
    ]  # js.Const | js.Scalar | js.ErrorObject | LineagePlan | ConnectionPlan


@dataclass(frozen=True, slots=True)
class LineagePlan:
    key: str
    column: str
    run: RunPlan


@dataclass(frozen=True, slots=True)
class EdgesPlan:
    key: str
    fields: tuple[Any, ...]  # js.Const | js.Scalar | (key, RunPlan)


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    key: str
    args: ArgsPlan
    fields: tuple[Any, ...]  # js.Const | js.Scalar | EdgesPlan | js.PageInfo
    children: bool


@dataclass(frozen=True, slots=True)
class ByIdPlan:
    key: str
    name: str  # run | node | nodes
    args: ArgsPlan
    run: RunPlan


class Planner:
    """Collects an operation's fields into a plan, or raises ``NotCompiled``."""

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
            args = ArgsPlan(field, details[0].node)
            if name == "runs":
                planned.append(self._connection(key, field, details, args, False))
            elif name in ("run", "node", "nodes"):
                planned.append(ByIdPlan(key, name, args, self._run(details)))
            else:
                raise NotCompiled
        return tuple(planned)

    def _grouped(self, collected: Any) -> Iterator[tuple[str, FieldDetailsList]]:
        if collected.new_defer_usages:
            raise NotCompiled
        for key, details in collected.grouped_field_set.items():
            for detail in details:
                directives = detail.node.directives or ()
                if any(d.name.value not in _DIRECTIVES for d in directives):
                    raise NotCompiled
            yield key, details

    def _collect(
        self,
        kind: GraphQLNamedType,
        details: FieldDetailsList,
        scalars: Collection[str],
        nested: Mapping[str, Nested],
    ) -> list[Any]:
        """The plan of each field selected on ``kind``: ``__typename``, a
        scalar read as it is, or what ``nested`` plans for it."""
        assert isinstance(kind, GraphQLObjectType)
        collected = self.executor.collect_subfields(kind, details)
        planned: list[Any] = []
        for key, sub in self._grouped(collected):
            name = sub[0].node.name.value
            if name == "__typename":
                planned.append(js.Const(key, kind.name))
            elif name in scalars:
                planned.append(js.Scalar(key, name))
            elif name in nested:
                planned.append(nested[name](key, kind.fields[name], sub))
            else:
                raise NotCompiled
        return planned

    def _run(self, details: FieldDetailsList) -> RunPlan:
        def lineage(key: str, field: GraphQLField, sub: FieldDetailsList) -> Any:
            column = _LINEAGE[sub[0].node.name.value]
            return LineagePlan(key, column, self._run(sub))

        def children(key: str, field: GraphQLField, sub: FieldDetailsList) -> Any:
            args = ArgsPlan(field, sub[0].node)
            return self._connection(key, field, sub, args, True)

        def error(key: str, field: GraphQLField, sub: FieldDetailsList) -> Any:
            found = self._collect(
                get_named_type(field.type), sub, ("type", "message"), {}
            )
            return js.ErrorObject(key, tuple(found))

        nested = {
            "parent": lineage,
            "root": lineage,
            "children": children,
            "error": error,
        }
        return RunPlan(
            tuple(self._collect(self.run_type, details, _RUN_SCALARS, nested))
        )

    def _connection(
        self,
        key: str,
        field: GraphQLField,
        details: FieldDetailsList,
        args: ArgsPlan,
        children: bool,
    ) -> ConnectionPlan:
        nested = {"edges": self._edges, "pageInfo": self._page_info}
        found = self._collect(
            get_named_type(field.type), details, ("totalCount",), nested
        )
        return ConnectionPlan(key, args, tuple(found), children)

    def _edges(
        self, key: str, field: GraphQLField, details: FieldDetailsList
    ) -> EdgesPlan:
        def node(key: str, field: GraphQLField, sub: FieldDetailsList) -> Any:
            return (key, self._run(sub))

        found = self._collect(
            get_named_type(field.type), details, ("cursor",), {"node": node}
        )
        return EdgesPlan(key, tuple(found))

    def _page_info(
        self, key: str, field: GraphQLField, details: FieldDetailsList
    ) -> js.PageInfo:
        found = self._collect(get_named_type(field.type), details, _PAGE_INFO, {})
        return js.PageInfo(key, tuple(found))
