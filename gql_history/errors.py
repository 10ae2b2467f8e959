"""The errors gql_history raises; the HTTP and GraphQL edges translate them."""

from __future__ import annotations


class HistoryError(RuntimeError):
    """Base class for all gql_history errors."""


class RunNotFoundError(HistoryError, LookupError):
    """Raised when no task run has the requested id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"task run {run_id!r} not found")
        self.run_id = run_id


class InvalidQueryError(HistoryError, ValueError):
    """Raised when a history query is malformed: a page size, filter or cursor."""


class InvalidCursorError(InvalidQueryError):
    """Raised when a pagination cursor is malformed, altered or from another order."""
