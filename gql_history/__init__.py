"""Task-run history for aio-fluid, persisted in PostgreSQL and served as GraphQL."""

from .errors import (
    HistoryError,
    InvalidCursorError,
    InvalidQueryError,
    RunNotFoundError,
)
from .filters import RunFilter
from .models import TaskHistoryQuery, TaskRunHistory, TaskRunHistoryPage
from .plugin import TaskHistoryPlugin, get_history_plugin
from .store import HistoryStore, RunOrder
from .tables import history_table

__all__ = [
    "HistoryError",
    "HistoryStore",
    "InvalidCursorError",
    "InvalidQueryError",
    "RunFilter",
    "RunNotFoundError",
    "RunOrder",
    "TaskHistoryPlugin",
    "TaskHistoryQuery",
    "TaskRunHistory",
    "TaskRunHistoryPage",
    "get_history_plugin",
    "history_table",
]
