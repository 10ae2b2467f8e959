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


class SearchUnavailableError(InvalidQueryError):
    """Raised when a text filter (``errorContains``, ``search``) is asked of a
    database without the ``pg_trgm`` extension its indexes need."""

    def __init__(self) -> None:
        super().__init__(
            "text search (`errorContains`, `search`) needs PostgreSQL's pg_trgm "
            "extension: run `CREATE EXTENSION pg_trgm;` in the history's database "
            "as a superuser (it ships with PostgreSQL's contrib modules), then "
            "`gql-history upgrade` to create the trigram indexes"
        )


class InvalidCursorError(InvalidQueryError):
    """Raised when a pagination cursor is malformed, altered or from another order."""


class TooManySubscriptionsError(InvalidQueryError):
    """Raised when a connection opens more live subscriptions than allowed."""


class PersistedQueryError(InvalidQueryError):
    """Base class of the errors refusing a persisted or unlisted operation."""


class PersistedQueryNotFoundError(PersistedQueryError):
    """Raised when a request names a document by a hash not held (yet): an
    automatic persisted query's client sends the document along next."""


class PersistedQueryNotSupportedError(PersistedQueryError):
    """Raised when a request names a document by hash and the server keeps none."""


class PersistedQueryNotInListError(PersistedQueryError):
    """Raised when, with an allow-list, a hash names no operation in it."""


class QueryNotInSafelistError(PersistedQueryError):
    """Raised when, with an allow-list, a request sends a document not in it."""


class InvalidManifestError(HistoryError, ValueError):
    """Raised when a persisted-documents manifest cannot be read or is malformed."""


class LiveUpdatesError(HistoryError):
    """Base class of the errors ending a live subscription.

    Nothing is lost: subscribing again with ``after`` set to the
    ``resumeToken`` of the last run received replays exactly what it missed.
    """


class SubscriberTooSlowError(LiveUpdatesError):
    """Raised when a subscriber falls more runs behind than its queue holds."""


class LiveUpdatesInterruptedError(LiveUpdatesError):
    """Raised when change notifications stop: the database connection
    listening for them was lost, or the server is shutting down."""
