"""Task-run history for aio-fluid, persisted in PostgreSQL and served as GraphQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .app import create_app
from .errors import (
    HistoryError,
    InvalidCursorError,
    InvalidQueryError,
    LiveUpdatesError,
    LiveUpdatesInterruptedError,
    RunNotFoundError,
    SubscriberTooSlowError,
    TooManySubscriptionsError,
)
from .filters import RunFilter
from .limits import QueryLimits
from .live import LiveUpdates
from .models import TaskHistoryQuery, TaskRunHistory, TaskRunHistoryPage
from .plugin import TaskHistoryPlugin, get_history_plugin
from .stats import RunStats
from .store import HistoryStore, RunOrder
from .tables import history_table

if TYPE_CHECKING:
    from .context import HistoryContext
    from .graphql import graphql_router
    from .schema import build_schema

#: Names importing Strawberry, loaded on first use to keep this import cheap.
_LAZY = {
    "HistoryContext": ".context",
    "build_schema": ".schema",
    "graphql_router": ".graphql",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HistoryContext",
    "HistoryError",
    "HistoryStore",
    "InvalidCursorError",
    "InvalidQueryError",
    "LiveUpdates",
    "LiveUpdatesError",
    "LiveUpdatesInterruptedError",
    "QueryLimits",
    "RunFilter",
    "RunNotFoundError",
    "RunOrder",
    "RunStats",
    "SubscriberTooSlowError",
    "TaskHistoryPlugin",
    "TaskHistoryQuery",
    "TaskRunHistory",
    "TaskRunHistoryPage",
    "TooManySubscriptionsError",
    "build_schema",
    "create_app",
    "get_history_plugin",
    "graphql_router",
    "history_table",
]
