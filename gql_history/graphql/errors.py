"""Errors coded for clients at the GraphQL edge.

A client's mistake (a malformed document or variable, a limit exceeded, an
invalid cursor, page size or filter) keeps its message and gets
``extensions.code = "BAD_USER_INPUT"``. Anything else is logged here and
replaced by a generic ``INTERNAL_SERVER_ERROR``, so no SQL, stack trace or
connection string ever reaches a response.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import SchemaExtension
from strawberry.relay import GlobalIDValueError
from strawberry.types import StreamExecutionResult

from ..errors import (
    InvalidQueryError,
    LiveUpdatesError,
    PersistedQueryNotFoundError,
    PersistedQueryNotInListError,
    PersistedQueryNotSupportedError,
    QueryNotInSafelistError,
    SearchUnavailableError,
    SubscriberTooSlowError,
)

logger = logging.getLogger(__name__)

BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
INTERNAL_MESSAGE = "Internal server error: the request could not be completed."
#: A live subscription ended: subscribe again with ``after`` to resume it.
SUBSCRIBER_TOO_SLOW = "SUBSCRIBER_TOO_SLOW"
LIVE_UPDATES_INTERRUPTED = "LIVE_UPDATES_INTERRUPTED"
#: A text filter on a database without pg_trgm (the message says how to add it).
SEARCH_UNAVAILABLE = "SEARCH_UNAVAILABLE"
#: Persisted operations, coded as Apollo Server and Router code them.
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
QUERY_NOT_IN_SAFELIST = "QUERY_NOT_IN_SAFELIST"
_PERSISTED_CODES: dict[type[InvalidQueryError], str] = {
    PersistedQueryNotFoundError: PERSISTED_QUERY_NOT_FOUND,
    PersistedQueryNotSupportedError: PERSISTED_QUERY_NOT_SUPPORTED,
    PersistedQueryNotInListError: PERSISTED_QUERY_NOT_IN_LIST,
    QueryNotInSafelistError: QUERY_NOT_IN_SAFELIST,
}

#: Errors carrying a message meant for the client.
_USER_ERRORS = (
    GraphQLError,
    InvalidQueryError,
    GlobalIDValueError,
    StrawberryInputCoercionError,
)


def code_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    """``errors`` with an ``extensions.code`` each, unexpected ones masked."""
    return [code_error(error) for error in errors]


def code_error(error: GraphQLError) -> GraphQLError:
    """``error`` coded for the client; an error already coded is kept as is."""
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if isinstance(original, SearchUnavailableError):
        return _coded(error, error.message, SEARCH_UNAVAILABLE)
    if original is None or isinstance(original, _USER_ERRORS):
        return _coded(error, error.message, BAD_USER_INPUT)
    if isinstance(original, RecursionError):  # a document nesting absurdly deep
        return _coded(error, "the document nests too deeply", BAD_USER_INPUT)
    if isinstance(original, SubscriberTooSlowError):
        return _coded(error, error.message, SUBSCRIBER_TOO_SLOW)
    if isinstance(original, LiveUpdatesError):
        return _coded(error, error.message, LIVE_UPDATES_INTERRUPTED)
    logger.error(
        "gql_history: GraphQL error at %s",
        ".".join(map(str, error.path or ())) or "the request",
        exc_info=(type(original), original, original.__traceback__),
    )
    return _coded(error, INTERNAL_MESSAGE, INTERNAL_SERVER_ERROR)


def request_error(error: InvalidQueryError) -> GraphQLError:
    """The coded GraphQL error refusing a whole request, such as a persisted
    operation not held or not allowed (``BAD_USER_INPUT`` for the rest)."""
    code = _PERSISTED_CODES.get(type(error), BAD_USER_INPUT)
    return GraphQLError(str(error), extensions={"code": code})


def _coded(error: GraphQLError, message: str, code: str) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**(error.extensions or {}), "code": code},
    )


class ErrorCodes(SchemaExtension):
    """Code (and mask) the errors of every operation once it completes, and
    of each result a subscription (or any operation over a websocket) sends."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = code_errors(list(result.errors))

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = code_errors(list(errors))  # type: ignore[union-attr]
        yield
