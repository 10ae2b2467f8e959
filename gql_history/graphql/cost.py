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
#: Fields reading one run.
_SINGLE = frozenset({"run", "node", "parent", "root"})


def operation_cost(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    *,
    max_page_size: int,
) -> int:
    """The most runs the selection may read (see the module's docstring)."""
    cost = 0
    # (selection set, runs it is selected on): iterative, whatever the depth
    pending: list[tuple[SelectionSetNode, int]] = [(selection_set, 1)]
    while pending:
        selections, times = pending.pop()
        for field in _fields(selections, fragments):
            size = _size(field, variables, max_page_size)
            inner = times if size is None else times * size
            if size is not None:
                cost += inner
            if field.selection_set is not None:
                pending.append((field.selection_set, inner))
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
    field: FieldNode, variables: dict[str, Any], max_page_size: int
) -> int | None:
    """How many runs ``field`` reads per parent, None for a field reading none."""
    name = field.name.value
    if name in _SINGLE:
        return 1
    arguments = {
        argument.name.value: value_from_ast_untyped(argument.value, variables)
        for argument in field.arguments or ()
    }
    if name == "nodes":
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


def longest_list(value: Any) -> int:
    """The length of the longest list in a JSON value, at any depth."""
    longest = 0
    pending = [value]
    while pending:  # iterative: deep variables must not exhaust the stack
        item = pending.pop()
        if isinstance(item, list):
            longest = max(longest, len(item))
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
    return longest


class OperationLimits(SchemaExtension):
    """Refuses an operation whose variables hold a list longer than
    ``max_filter_values`` (before graphql-core coerces them, which takes
    the event loop for as long as the list is long), or whose cost is over
    ``max_cost``."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        limits = self.limits
        variables = context.variables or {}
        if (longest := longest_list(variables)) > limits.max_filter_values:
            raise GraphQLError(
                f"the variables hold a list of {longest} values, more than "
                f"{limits.max_filter_values}: split the request"
            )
        document = context.graphql_document
        if document is None:
            yield
            return
        operations = [
            definition
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        ]
        if context.operation_name is None and len(operations) > 1:
            # the GraphQL spec's request error (Strawberry would run the first)
            raise GraphQLError(
                "the document holds several operations: name the one to run "
                "with `operationName`"
            )
        operation = get_operation_ast(document, context.operation_name)
        if operation is not None:
            defaults = {
                definition.variable.name.value: value_from_ast_untyped(
                    definition.default_value
                )
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
        yield
