"""The cost of an operation, and the limits checked on its variables, before
it runs: a request over a limit is refused whole, with nothing read.

An operation's cost is the most runs it may read: along each path, the
product of the page sizes of the connections (and ``nodes`` lists) it goes
through, summed over every field that reads runs. So ``runs(first: 100) {
edges { node { children(first: 20) { ... } } } }`` costs 100 + 100 x 20.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_operation_ast,
)
from graphql.utilities import value_from_ast_untyped
from strawberry.extensions import SchemaExtension

from ..core.limits import QueryLimits
from .paging import DEFAULT_PAGE_SIZE

#: Fields reading a page of runs, sized by ``first``/``last``.
_CONNECTIONS = frozenset({"runs", "children"})
#: Fields of a run reading one run.
_LINEAGE = frozenset({"parent", "root"})
#: Fields of the Query root reading one run (an edge's ``node`` is not one).
_ROOT_SINGLE = frozenset({"run", "node"})


def operation_cost(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    *,
    max_page_size: int,
) -> int:
    """The most runs the selection may read (see the module's docstring)."""
    cost = 0
    # (selection set, runs it is selected on, whether it is the root's):
    # iterative, whatever the depth
    pending: list[tuple[SelectionSetNode, int, bool]] = [(selection_set, 1, True)]
    while pending:
        selections, times, root = pending.pop()
        for field in _fields(selections, fragments):
            size = _size(field, variables, max_page_size, root=root)
            inner = times if size is None else times * size
            if size is not None:
                cost += inner
            if field.selection_set is not None:
                pending.append((field.selection_set, inner, False))
    return cost


def _fields(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    """The fields of a selection set, through its fragments (validation has
    ruled out fragment cycles)."""
    pending = list(selection_set.selections)
    while pending:
        selection = pending.pop()
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            pending.extend(selection.selection_set.selections)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                pending.extend(fragment.selection_set.selections)


def _size(
    field: FieldNode, variables: dict[str, Any], max_page_size: int, *, root: bool
) -> int | None:
    """How many runs ``field`` reads per parent, None for a field reading none."""
    name = field.name.value
    if name in _LINEAGE or (root and name in _ROOT_SINGLE):
        return 1
    arguments = {
        argument.name.value: value_from_ast_untyped(argument.value, variables)
        for argument in field.arguments or ()
    }
    if root and name == "nodes":
        ids = arguments.get("ids")
        return len(ids) if isinstance(ids, list) else 1
    if name not in _CONNECTIONS:
        return None
    size = arguments.get("last")
    if size is None:
        size = arguments.get("first")
    if not isinstance(size, int) or size < 0:
        return min(DEFAULT_PAGE_SIZE, max_page_size)  # the resolver refuses others
    return min(size, max_page_size)


def count_values(value: Any, most: int) -> int:
    """How many JSON values ``value`` holds, itself included, counting no
    further than past ``most``."""
    count = 0
    pending = [value]
    while pending and count <= most:  # iterative: deep values must not
        item = pending.pop()  # exhaust the stack
        count += 1
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
    return count


def check_operation(
    limits: QueryLimits,
    document: DocumentNode | None,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> None:
    """Raise a ``GraphQLError`` if the variables hold more than
    ``max_variable_values`` values (checked before graphql-core coerces them,
    which holds the event loop for as long as they are many), if the
    operation's cost is over ``max_cost``, or if the document holds several
    operations and the request names none (``operation_name`` as sent)."""
    variables = variables or {}
    most = limits.max_variable_values
    if count_values(variables, most) > most:
        raise GraphQLError(
            f"the variables hold more than {most} values: split the request"
        )
    if document is None:
        return
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
    if operation_name is None and len(operations) > 1:
        # the GraphQL spec's request error (Strawberry would run the first)
        raise GraphQLError(
            "the document holds several operations: name the one to run "
            "with `operationName`"
        )
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return
    defaults = {
        definition.variable.name.value: value_from_ast_untyped(definition.default_value)
        for definition in operation.variable_definitions or ()
        if definition.default_value is not None
    }
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    cost = operation_cost(
        operation.selection_set,
        fragments,
        {**defaults, **variables},
        max_page_size=limits.max_page_size,
    )
    if cost > limits.max_cost:
        raise GraphQLError(
            f"the operation may read up to {cost} runs, more than "
            f"{limits.max_cost}: ask for smaller pages, or fewer nested "
            "`children`"
        )


class OperationLimits(SchemaExtension):
    """Refuses an operation over the limits of ``check_operation``."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        check_operation(
            self.limits,
            context.graphql_document,
            # Strawberry names the first operation when the request names none
            getattr(context, "_provided_operation_name", None),
            context.variables,
        )
        yield
