"""An execution context completing plain data fields in bulk.

A page of 100 runs has well over a thousand fields, and graphql-core builds a
resolve info and walks its completion machinery for each. Fields without a
resolver or arguments need none of that: their value is an attribute, a leaf
coerced by its type or an object whose fields are plain too (an edge and its
node). Such fields are completed here with plain loops. Only values that
complete without error take this path: anything else (a null in a non-null
field, a value its type rejects, a field with a resolver) goes to graphql-core,
so responses and errors are the same either way.
"""

from __future__ import annotations

import inspect
import keyword
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from math import isfinite
from typing import Any, ClassVar

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLString,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.language import FragmentDefinitionNode, Node, OperationDefinitionNode
from graphql.pyutils import AwaitableOrValue, Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter


class _Fallback(Exception):  # noqa: N818 (control flow, not an error)
    """A value graphql-core must complete, to raise the error it would."""


_FALLBACK = _Fallback()

#: Completes a field on a source object, raising ``_Fallback`` when it cannot.
Completer = Callable[[Any], Any]
#: Per response name, how to complete the field, or None for graphql-core to.
_Plan = list[tuple[str, Completer | None]]
#: The id of a parent type, then the ids of the nodes of its fields.
_NodesKey = tuple[int, ...]
#: Plans kept for reuse across requests; past this, they are planned afresh.
_MAX_SHARED_PLANS = 2048
#: Longest document, in characters, whose parse, validation and plans are
#: kept for later requests: what is kept holds the document's text.
MAX_CACHED_DOCUMENT = 32_768


class BulkExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with plain data fields completed directly."""

    #: Plans by parent type and field nodes, for operations whose plans hold
    #: whatever their variables: shared by every request of the process.
    _shared_plans: ClassVar[dict[_NodesKey, tuple[Any, _Plan | None]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # By id of a grouped field set, kept alive alongside so ids stay unique.
        self._plans: dict[int, tuple[GroupedFieldSet, _Plan | None]] = {}
        # By parent type and field nodes: shared by a subscription's events,
        # and by every request when no directive makes a plan depend on
        # variables (``@include(if: $x)``).
        fragments = [details.definition for details in self.fragments.values()]
        location = self.operation.loc
        small = location is None or len(location.source.body) <= MAX_CACHED_DOCUMENT
        shared = small and _directive_free(self.operation, fragments)
        self._plans_by_nodes: dict[_NodesKey, tuple[Any, _Plan | None]] = (
            self._shared_plans if shared else {}
        )
        middleware = self.middleware_manager
        self._bulk = middleware is None or not middleware.middlewares

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        plan = self._plan(parent_type, grouped_field_set) if self._bulk else None
        if plan is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        rest: GroupedFieldSet = {}
        for name, entry in plan:
            value: Any = _FALLBACK
            if entry is not None:
                try:
                    value = entry(source_value)
                except Exception:
                    value = _FALLBACK
            if value is _FALLBACK:
                rest[name] = grouped_field_set[name]
            results[name] = value  # keeps the response's field order
        if not rest:
            return results
        executed = super().execute_fields(
            parent_type, source_value, path, rest, position_context
        )
        if self.is_awaitable(executed):

            async def merged() -> dict[str, Any]:
                return _merge(results, rest, await executed)

            return merged()
        return _merge(results, rest, executed)  # type: ignore[arg-type]

    def build_per_event_executor(self, payload: Any) -> BulkExecutionContext:
        """The executor of one subscription event: a copy sharing the plans by
        field nodes, with plans by grouped field set of its own, since every
        event collects new sets (kept, they would grow with every event)."""
        executor = super().build_per_event_executor(payload)
        assert isinstance(executor, BulkExecutionContext)
        executor._plans = {}
        return executor

    def _plan(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> _Plan | None:
        """How to complete each field, None when no field can be done here."""
        cached = self._plans.get(id(grouped_field_set))
        if cached is not None:
            return cached[1]
        # the nodes decide the grouping (by alias or name): a flat key will do
        nodes = tuple(
            field.node for details in grouped_field_set.values() for field in details
        )
        key = (id(parent_type), *map(id, nodes))
        known = self._plans_by_nodes.get(key)
        if known is not None:
            found = known[1]
        else:
            plan: _Plan = [
                (name, self._entry(parent_type, details))
                for name, details in grouped_field_set.items()
            ]
            found = plan if any(entry for _, entry in plan) else None
            if len(self._plans_by_nodes) >= _MAX_SHARED_PLANS:
                self._plans_by_nodes.clear()
            # the type and nodes, kept alive, keep the ids in the key unique
            self._plans_by_nodes[key] = ((parent_type, nodes), found)
        self._plans[id(grouped_field_set)] = (grouped_field_set, found)
        return found

    def _entry(
        self, parent_type: GraphQLObjectType, details: FieldDetailsList
    ) -> Completer | None:
        node = details[0].node
        if node.name.value == "__typename":
            name = parent_type.name
            return lambda source: name
        field = parent_type.fields.get(node.name.value)
        if field is None or node.arguments or not _plain(field):
            return None
        kind: GraphQLOutputType = field.type
        nullable = not isinstance(kind, GraphQLNonNull)
        if isinstance(kind, GraphQLNonNull):
            kind = kind.of_type
        many = item_nullable = isinstance(kind, GraphQLList)
        if isinstance(kind, GraphQLList):
            kind = kind.of_type
            if isinstance(kind, GraphQLNonNull):
                item_nullable, kind = False, kind.of_type
        if is_leaf_type(kind) and not many:
            return _leaf_field(_attribute(field), _reader(field), kind, nullable)
        if is_leaf_type(kind):
            item = _leaf(kind)
        elif isinstance(kind, GraphQLObjectType):
            grouped, defer_usages, *_ = self.collect_subfields(kind, details)
            sub = self._plan(kind, grouped) if not defer_usages else None
            if sub is None or any(complete is None for _, complete in sub):
                return None
            item = _object(kind, [(n, c) for n, c in sub if c is not None])
        else:
            return None  # interfaces and unions resolve their type
        return _field(_reader(field), item, nullable, many, item_nullable)


def _directive_free(
    operation: OperationDefinitionNode, fragments: Iterable[FragmentDefinitionNode]
) -> bool:
    """Whether no selection of ``operation`` or its fragments has a directive,
    so the fields it collects never depend on its variables."""
    pending: list[Node] = [*operation.selection_set.selections, *fragments]
    while pending:
        node = pending.pop()
        if getattr(node, "directives", None):
            return False
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            pending.extend(selection_set.selections)
    return True


def _plain(field: GraphQLField) -> bool:
    """Whether ``field`` is read by Strawberry's default resolver, with no args."""
    return not field.args and getattr(field.resolve, "_is_default", False)


def _attribute(field: GraphQLField) -> str | None:
    """The attribute Strawberry's default resolver reads for ``field``, if
    that resolver is plain ``getattr``."""
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    name = getattr(definition, "python_name", None)
    if name and getattr(definition, "default_resolver", None) is getattr:
        return str(name)
    return None


def _reader(field: GraphQLField) -> Callable[[Any], Any]:
    """The attribute getter Strawberry's default resolver amounts to."""
    resolve = field.resolve
    assert resolve is not None
    name = _attribute(field)
    if name is not None:
        return operator.attrgetter(name)
    return lambda source: resolve(source, None)


def _field(
    read: Callable[[Any], Any],
    item: Completer,
    nullable: bool,
    many: bool,
    item_nullable: bool,
) -> Completer:
    """Completes a field read by ``read`` whose value (or each) ``item`` completes."""
    if many:

        def complete_item(value: Any) -> Any:
            if value is None:
                if item_nullable:
                    return None
                raise _FALLBACK
            return item(value)

    def complete(source: Any) -> Any:
        value = read(source)
        if value is None:
            if nullable:
                return None
            raise _FALLBACK
        if not many:
            return item(value)
        if not isinstance(value, list | tuple):
            raise _FALLBACK
        return [complete_item(one) for one in value]

    return complete


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A leaf field read as ``source.<attribute>``: a value of type
    ``unchanged`` is its own output, ``rest`` completes any other. An object
    completer reads it inline; called, it completes the field on its own."""

    attribute: str
    unchanged: type
    rest: Completer

    def __call__(self, source: Any) -> Any:
        value = getattr(source, self.attribute)
        return value if value.__class__ is self.unchanged else self.rest(value)


def _leaf_field(
    attribute: str | None,
    read: Callable[[Any], Any],
    kind: GraphQLScalarType | GraphQLEnumType,
    nullable: bool,
) -> Completer:
    """Completes a field of a leaf type: the commonest case, in one call, or
    none when inlined (``_Leaf``)."""
    coerce = _serializer(kind)
    unchanged = _unchanged(kind)

    def rest(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise _FALLBACK
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise _FALLBACK
        return coerced

    if attribute and attribute.isidentifier() and not keyword.iskeyword(attribute):
        return _Leaf(attribute, unchanged, rest)  # valid as `value.<attribute>`

    def complete(source: Any) -> Any:
        value = read(source)
        return value if value.__class__ is unchanged else rest(value)

    return complete


def _leaf(kind: GraphQLScalarType | GraphQLEnumType) -> Completer:
    """Coerces a non-null leaf value for output as graphql-core would."""
    coerce = _serializer(kind)
    unchanged = _unchanged(kind)

    def complete(value: Any) -> Any:
        if value.__class__ is unchanged:
            return value
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise _FALLBACK
        return coerced

    return complete


def _object(kind: GraphQLObjectType, fields: list[tuple[str, Completer]]) -> Completer:
    """Completes a non-null object value with completers of its fields.

    The completer is a function written for these fields, reading leaf
    fields inline (``_Leaf``): a page completes thousands of fields, and a
    call for each costs more than the field itself.
    """
    names: dict[str, Any] = {"is_type_of": kind.is_type_of, "FALLBACK": _FALLBACK}
    lines = ["def complete(value):"]
    if kind.is_type_of is not None:
        lines.append("    if not is_type_of(value, None): raise FALLBACK")
    for index, (_, field) in enumerate(fields):
        value = f"v{index}"
        if isinstance(field, _Leaf):
            names[f"u{index}"], names[f"r{index}"] = field.unchanged, field.rest
            lines.append(f"    {value} = value.{field.attribute}")
            lines.append(f"    if {value}.__class__ is not u{index}:")
            lines.append(f"        {value} = r{index}({value})")
        else:
            names[f"f{index}"] = field
            lines.append(f"    {value} = f{index}(value)")
    output = ", ".join(f"{name!r}: v{index}" for index, (name, _) in enumerate(fields))
    lines.append(f"    return {{{output}}}")
    exec("\n".join(lines), names)
    complete: Completer = names["complete"]
    return complete


def _serializer(kind: GraphQLScalarType | GraphQLEnumType) -> Callable[[Any], Any]:
    """``kind``'s output coercion, with graphql-core's own answer for the
    common values found first: through a dict of names by value for an enum,
    as they are for an int in 32 bits or a finite float."""
    coerce = kind.coerce_output_value
    if kind is GraphQLInt:

        def serialize_int(value: Any) -> Any:
            if value.__class__ is int and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT:
                return value
            return coerce(value)

        return serialize_int
    if kind is GraphQLFloat:

        def serialize_float(value: Any) -> Any:
            if value.__class__ is float and isfinite(value):
                return value
            return coerce(value)

        return serialize_float
    if not isinstance(kind, GraphQLEnumType):
        return coerce
    names = {value.value: name for name, value in kind.values.items()}

    def serialize(value: Any) -> Any:
        try:
            name = names.get(value)
        except TypeError:  # unhashable: coerce scans the values
            name = None
        return coerce(value) if name is None else name

    return serialize


class _Never:
    """A type no value has."""


def _unchanged(kind: GraphQLScalarType | GraphQLEnumType) -> type:
    """The type of values ``kind`` outputs unchanged (graphql-core's String,
    ID and Boolean), so they need no call; a type no value has for others."""
    if kind is GraphQLString or kind is GraphQLID:
        return str
    if kind is GraphQLBoolean:
        return bool
    return _Never


def _merge(
    results: dict[str, Any], rest: GroupedFieldSet, executed: dict[str, Any]
) -> dict[str, Any]:
    for name in rest:
        if name in executed:
            results[name] = executed[name]
        else:  # a field graphql-core leaves out of the response
            del results[name]
    return results


def bulk_supported() -> bool:
    """Whether graphql-core's executor has the hooks this context relies on."""
    context = StrawberryGraphQLCoreExecutionContext
    hook = getattr(context, "execute_fields", None)
    if hook is None or not hasattr(context, "collect_subfields"):
        return False
    return list(inspect.signature(hook).parameters) == [
        "self",
        "parent_type",
        "source_value",
        "path",
        "grouped_field_set",
        "position_context",
    ]
