"""Limits on what one request may ask for, set on the plugin or the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidQueryError

if TYPE_CHECKING:  # at run time too, filters import aio-fluid: not for --help
    from .filters import RunFilter


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Bounds on a GraphQL request's shape and on the work it can cause."""

    max_depth: int = 12
    """Deepest field nesting of an operation (introspection aside)."""
    max_aliases: int = 30
    """Most aliased fields in a document."""
    max_tokens: int = 5000
    """Most tokens in a document; longer ones are not even parsed."""
    max_filter_depth: int = 5
    """Deepest nesting of a filter, 1 for a filter without ``and``/``or``/``not``."""
    max_page_size: int = 100
    """Largest ``first``/``last`` of a connection, and most ids of ``nodes``."""
    introspection: bool = True
    """Whether the schema answers introspection queries (GraphiQL needs it)."""
    max_subscriptions: int = 10
    """Most live subscriptions one websocket connection may hold open."""
    max_replay: int = 10_000
    """Most runs a subscription replays from its ``after`` or ``since``."""
    max_buckets: int = 1000
    """Most time buckets in a ``runStats`` series."""
    max_filter_values: int = 1000
    """Most values in one list of a filter (task names, tags, states, the
    sub-filters of ``and``/``or``)."""
    max_filter_size: int = 100
    """Most conditions in one filter, counted at every depth."""
    max_variable_values: int = 10_000
    """Most JSON values (scalars, lists and objects) in a GraphQL request's
    variables, counted before they are coerced."""
    max_cost: int = 10_000
    """Most runs one operation may ask for: along each path, the product of
    the page sizes of the connections (and ``nodes``) it goes through,
    summed over every path."""
    max_body_size: int = 1_048_576
    """Most bytes of a GraphQL request body (or GET query string) and of a
    websocket message."""
    connection_init_timeout: float = 3.0
    """Seconds a websocket may wait before its ``connection_init``."""

    def check_filter(self, run_filter: RunFilter | None) -> None:
        """Raise ``InvalidQueryError`` if ``run_filter`` holds more values or
        conditions than these limits allow."""
        if run_filter is None:
            return
        if (most := run_filter.most_values()) > self.max_filter_values:
            raise InvalidQueryError(
                f"a filter list holds {most} values, more than "
                f"{self.max_filter_values}: split the request"
            )
        if (size := run_filter.size()) > self.max_filter_size:
            raise InvalidQueryError(
                f"the filter holds {size} conditions, more than "
                f"{self.max_filter_size}: simplify it"
            )

    @classmethod
    def from_options(cls, **options: Any) -> QueryLimits:
        """The limits of the plugin's (and ``create_app``'s) option names:
        ``max_query_depth`` and ``max_stats_buckets`` for ``max_depth`` and
        ``max_buckets``, the others as they are."""
        return cls(**{_OPTION_FIELDS.get(name, name): v for name, v in options.items()})


#: The fields of the options named otherwise.
_OPTION_FIELDS = {"max_query_depth": "max_depth", "max_stats_buckets": "max_buckets"}
