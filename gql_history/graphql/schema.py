"""The schema of the Query and Subscription roots, with the extensions that
enforce its limits: ``schema`` is the default one, which
``strawberry export-schema gql_history.schema:schema`` prints.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import strawberry
from graphql import GraphQLError, NoSchemaIntrospectionCustomRule
from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import (
    create_validator as depth_rule,
)
from strawberry.types import ExecutionContext

from ..core.limits import QueryLimits
from .compiled import CompiledQueries
from .cost import OperationLimits
from .errors import ErrorCodes
from .execution import MAX_CACHED_DOCUMENT, BulkExecutionContext, bulk_supported
from .query import Query
from .subscription import Subscription

#: Parsed and validated documents kept per process (clients repeat queries).
_DOCUMENT_CACHE_SIZE = 256


def _cacheable(query: str | None) -> bool:
    """Whether ``query`` is short enough to keep: the caches hold at most 256
    documents of ``MAX_CACHED_DOCUMENT`` (about 8 MB), whatever the body
    size limit lets through."""
    return query is not None and len(query) <= MAX_CACHED_DOCUMENT


class _ParserCache(ParserCache):
    """Strawberry's ParserCache, leaving a document that fails to parse to
    Strawberry's own parse, which reports the error as a result (the stock
    extension raises it from its hook, past the other extensions)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if not _cacheable(context.query):
            yield  # parsed by Strawberry, not kept
            return
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        yield


class _ValidationCache(ValidationCache):
    """Strawberry's ValidationCache, keeping only documents short enough."""

    def on_validate(self) -> Iterator[None]:
        if not _cacheable(self.execution_context.query):
            yield  # validated by Strawberry, not kept
            return
        yield from super().on_validate()


class HistorySchema(strawberry.Schema):
    """A schema that leaves error logging to ``code_errors``: client mistakes
    are not server errors, and unexpected ones are logged once."""

    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: ExecutionContext | None = None,
    ) -> None:
        return None


_DEFAULT_LIMITS = QueryLimits()


@functools.cache
def build_schema(limits: QueryLimits = _DEFAULT_LIMITS) -> strawberry.Schema:
    """The schema enforcing ``limits`` (one per distinct limits, cached)."""
    rules: list[type[ASTValidationRule]] = [
        depth_rule(limits.max_depth, should_ignore=None),
        aliases_rule(limits.max_aliases),
    ]
    if not limits.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    # Factories build per-request extensions around rule classes made once,
    # so the validation cache recognises the same rules on every request.
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        ErrorCodes,
        functools.partial(MaxTokensLimiter, limits.max_tokens),
        functools.partial(_ParserCache, _DOCUMENT_CACHE_SIZE),
        functools.partial(AddValidationRules, rules),
        functools.partial(_ValidationCache, _DOCUMENT_CACHE_SIZE),
        functools.partial(OperationLimits, limits),
        CompiledQueries,  # last: after every check
    ]
    return HistorySchema(
        query=Query,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=(BulkExecutionContext if bulk_supported() else None),
    )


schema = build_schema()
