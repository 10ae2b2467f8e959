"""Limits on what one request may ask for, set on the plugin or the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
    """Most runs a subscription replays from its ``since``."""
    max_buckets: int = 1000
    """Most time buckets in a ``runStats`` series."""

    @classmethod
    def from_options(cls, **options: Any) -> QueryLimits:
        """The limits of the plugin's (and ``create_app``'s) option names:
        ``max_query_depth`` and ``max_stats_buckets`` for ``max_depth`` and
        ``max_buckets``, the others as they are."""
        return cls(**{_OPTION_FIELDS.get(name, name): v for name, v in options.items()})


#: The fields of the options named otherwise.
_OPTION_FIELDS = {"max_query_depth": "max_depth", "max_stats_buckets": "max_buckets"}
