"""Task-run history for aio-fluid, persisted in PostgreSQL and served as GraphQL.

Every public name loads on first use, so that importing the package (or its
command line) does not import FastAPI, SQLAlchemy and Strawberry up front.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core.filters import RunFilter
    from .core.limits import QueryLimits
    from .core.paging import RunOrder
    from .core.persisted import PersistedDocuments
    from .db.stats import RunStats
    from .db.store import HistoryStore
    from .db.tables import history_table
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
    from .graphql.context import HistoryContext
    from .graphql.schema import build_schema
    from .live.hub import LiveUpdates
    from .plugin import TaskHistoryPlugin, get_history_plugin
    from .service import HistoryService
    from .web.app import create_app
    from .web.graphql_router import graphql_router
    from .web.models import TaskHistoryQuery, TaskRunHistory, TaskRunHistoryPage
    from .web.scope import RunScope

#: Where each public name is defined.
_EXPORTS = {
    "HistoryContext": ".graphql.context",
    "HistoryError": ".errors",
    "HistoryService": ".service",
    "HistoryStore": ".db.store",
    "InvalidCursorError": ".errors",
    "InvalidQueryError": ".errors",
    "LiveUpdates": ".live.hub",
    "LiveUpdatesError": ".errors",
    "LiveUpdatesInterruptedError": ".errors",
    "PersistedDocuments": ".core.persisted",
    "QueryLimits": ".core.limits",
    "RunFilter": ".core.filters",
    "RunNotFoundError": ".errors",
    "RunOrder": ".core.paging",
    "RunScope": ".web.scope",
    "RunStats": ".db.stats",
    "SubscriberTooSlowError": ".errors",
    "TaskHistoryPlugin": ".plugin",
    "TaskHistoryQuery": ".web.models",
    "TaskRunHistory": ".web.models",
    "TaskRunHistoryPage": ".web.models",
    "TooManySubscriptionsError": ".errors",
    "build_schema": ".graphql.schema",
    "create_app": ".web.app",
    "get_history_plugin": ".plugin",
    "graphql_router": ".web.graphql_router",
    "history_table": ".db.tables",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "HistoryContext",
    "HistoryError",
    "HistoryService",
    "HistoryStore",
    "InvalidCursorError",
    "InvalidQueryError",
    "LiveUpdates",
    "LiveUpdatesError",
    "LiveUpdatesInterruptedError",
    "PersistedDocuments",
    "QueryLimits",
    "RunFilter",
    "RunNotFoundError",
    "RunOrder",
    "RunScope",
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
