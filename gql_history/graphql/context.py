"""The per-request context of the GraphQL endpoint."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from strawberry.fastapi import BaseContext
from strawberry.types.nodes import SelectedField

from ..core.filters import RunFilter
from ..errors import TooManySubscriptionsError
from .inputs import TaskRunFilter, run_filter
from .loaders import HistoryLoaders
from .selection import selected_paths

if TYPE_CHECKING:
    from graphql.pyutils import Path
    from strawberry import Info

    from ..service import HistoryService, ServesHistory


class HistoryContext(BaseContext):
    """The history service, and the DataLoaders and selection lookups of one
    request or websocket connection (so build a new one for each).

    ``source`` is a ``HistoryService`` or what has one, such as the plugin.
    A websocket connection's context lives as long as the connection: pass
    ``cache=False`` so its DataLoaders never serve a run read earlier.
    ``compiled`` lets the queries it covers be read in one SQL statement.
    """

    def __init__(
        self,
        source: HistoryService | ServesHistory,
        *,
        cache: bool = True,
        compiled: bool = False,
    ) -> None:
        super().__init__()
        from ..service import history_service  # the read stack, loaded on first use

        self.service = history_service(source)
        self._cache = cache
        self.compiled = compiled
        """Whether queries the compiler covers are read in one SQL statement
        returning their JSON (``graphql.compiled``)."""
        self.subscriptions = 0
        """Live subscriptions open on this connection."""
        self._selections: dict[tuple[str, ...], frozenset[str]] = {}

    @functools.cached_property
    def loaders(self) -> HistoryLoaders:
        """The request's DataLoaders, made on first use (a compiled read
        needs none)."""
        return HistoryLoaders(self.service, cache=self._cache)

    def open_subscription(self, limit: int) -> None:
        """Count one more live subscription on this connection; raise
        ``TooManySubscriptionsError`` if it would hold more than ``limit``."""
        if self.subscriptions >= limit:
            raise TooManySubscriptionsError(
                f"a connection may hold at most {limit} live subscriptions: "
                "complete one first, or open another connection"
            )
        self.subscriptions += 1

    def run_filter(self, f: TaskRunFilter | None) -> RunFilter | None:
        """The run filter of a ``filter`` argument, within the limits."""
        limits = self.service.limits
        found = run_filter(f, max_depth=limits.max_filter_depth)
        limits.check_filter(found)
        return found

    def close_subscription(self) -> None:
        """Count one live subscription fewer on this connection."""
        self.subscriptions -= 1

    def selected(self, info: Info[Any, Any]) -> frozenset[str]:
        """Dotted names of the fields selected below the field ``info`` resolves.

        Cached by the field's path without list indices: the children of the
        100 runs of a page share one selection.
        """
        key: list[str] = []
        path: Path | None = info.path
        while path is not None:
            if isinstance(path.key, str):
                key.append(path.key)
            path = path.prev
        found = self._selections.get(cache_key := tuple(key))
        if found is None:
            found = selected_paths(
                sub
                for field in info.selected_fields
                if isinstance(field, SelectedField)
                for sub in field.selections
            )
            self._selections[cache_key] = found
        return found


def history_context(info: Info[Any, Any]) -> HistoryContext:
    """The ``HistoryContext`` of a request.

    An application merging gql_history's types into its own schema can keep
    its own context and carry a ``HistoryContext`` as its ``history``
    attribute or key.
    """
    context = info.context
    if isinstance(context, HistoryContext):
        return context
    found = context.get("history") if isinstance(context, Mapping) else None
    found = found or getattr(context, "history", None)
    if not isinstance(found, HistoryContext):
        raise TypeError(
            "the GraphQL context is not a gql_history HistoryContext: build it "
            "with HistoryContext(service or plugin), or carry one as `history`"
        )
    return found
