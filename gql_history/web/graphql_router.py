"""The FastAPI router of the GraphQL endpoint: GraphiQL on GET, queries on
POST (and GET), and the ``graphql-transport-ws`` websocket protocol only.

Persisted operations are resolved here, before Strawberry sees a request or
a websocket ``subscribe``: a hash becomes its document, or the request is
refused with a coded error (``core.persisted`` decides which).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import pydantic_core
from cross_web import HTTPException
from fastapi import params
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    SubscribeMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from ..core.limits import QueryLimits
from ..core.persisted import PersistedDocuments
from ..errors import InvalidQueryError
from ..graphql.context import HistoryContext
from ..graphql.errors import (
    BAD_USER_INPUT,
    PERSISTED_QUERY_NOT_FOUND,
    PERSISTED_QUERY_NOT_IN_LIST,
    PERSISTED_QUERY_NOT_SUPPORTED,
    QUERY_NOT_IN_SAFELIST,
    code_errors,
    request_error,
)
from ..graphql.schema import build_schema
from ..service import HistoryService, ServesHistory, history_service
from .scope import RunScope, scoped_service

#: Queries and mutations a websocket connection may run at once, besides its
#: live subscriptions.
_MAX_OTHER_OPERATIONS = 20
#: The HTTP status of a request refused for its persisted operation. A hash
#: not held yet is a step of the APQ protocol (200, as Apollo Server answers);
#: the allow-list's refusals are Apollo Router's.
_REFUSED_STATUS = {
    PERSISTED_QUERY_NOT_FOUND: 200,
    PERSISTED_QUERY_NOT_SUPPORTED: 400,
    PERSISTED_QUERY_NOT_IN_LIST: 404,
    QUERY_NOT_IN_SAFELIST: 403,
}


class _Refused(Exception):  # noqa: N818 (control flow, not an error)
    """A request refused before execution, answered with ``error``."""

    def __init__(self, error: InvalidQueryError) -> None:
        super().__init__(str(error))
        self.error = error


class _TransportWSHandler(BaseGraphQLTransportWSHandler[HistoryContext, None]):
    """Strawberry's ``graphql-transport-ws`` handler, resolving persisted
    operations (and enforcing the allow-list) on ``subscribe``."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload: Any = message.get("payload")
        view = self.view
        if (
            self.connection_acknowledged
            and message["id"] not in self.operations
            and isinstance(payload, dict)
            and isinstance(view, HistoryGraphQLRouter)
        ):
            try:
                query = view.persisted.resolve(
                    payload.get("query"), payload.get("extensions")
                )
            except InvalidQueryError as exc:
                error = request_error(exc).formatted
                await self.send_message(
                    {"id": message["id"], "type": "error", "payload": [error]}
                )
                return
            if query is not None:
                resolved = {**message, "payload": {**payload, "query": query}}
                message = cast(SubscribeMessage, resolved)
        await super().handle_subscribe(message)


class HistoryGraphQLRouter(GraphQLRouter[HistoryContext, None]):
    """A GraphQLRouter whose every error response carries ``extensions.code``."""

    max_tokens = QueryLimits().max_tokens
    """Most tokens of a document it parses itself."""
    persisted = PersistedDocuments()
    """The documents requests may name by hash, and the allow-list if any."""
    graphql_transport_ws_handler_class = _TransportWSHandler

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # a GET naming a persisted query asks for its result, not GraphiQL
        return (
            "extensions" not in request.query_params
            and super().should_render_graphql_ide(request)
        )

    def encode_json(self, data: object) -> str:
        # pydantic-core's encoder: a page of runs encodes in half the time.
        # A str, not bytes: websocket messages must go out as text frames.
        return pydantic_core.to_json(data).decode()

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors the schema extension could not reach (say, a document
        # failing to parse) are coded here, on their way out.
        if result.errors:
            result.errors = code_errors(list(result.errors))
        return await super().process_result(request, result)

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Any,
        context: Any,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            query = self.persisted.resolve(request_data.query, request_data.extensions)
        except InvalidQueryError as exc:
            raise _Refused(exc) from None
        request_data = replace(request_data, query=query)
        # A plain request would run a subscription as a query, answering null.
        if _is_subscription(request_data, self.max_tokens):
            raise HTTPException(
                400,
                "subscriptions are served over a websocket (graphql-transport-ws "
                "protocol) on this endpoint, not as plain requests",
            )
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def run(  # type: ignore[override]
        self,
        request: Request | WebSocket,
        context: Any = UNSET,
        root_value: Any = UNSET,
    ) -> Response | WebSocket:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except _Refused as refused:
            error = request_error(refused.error).formatted
            status = _REFUSED_STATUS.get(error["extensions"]["code"], 400)
            return JSONResponse({"errors": [error]}, status_code=status)
        except HTTPException as exc:
            if exc.status_code != 400:
                raise
            # A body that is not JSON, or holds no query: a GraphQL error too.
            error = {"message": exc.reason, "extensions": {"code": BAD_USER_INPUT}}
            return JSONResponse({"errors": [error]}, status_code=400)


def _is_subscription(data: GraphQLRequestData, max_tokens: int) -> bool:
    """Whether ``data`` asks for a subscription (only documents naming one
    are parsed here)."""
    if not data.query or "subscription" not in data.query:
        return False
    try:
        document = parse(data.query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return False  # reported by the schema, as for any request
    operation = get_operation_ast(document, data.operation_name)
    return operation is not None and operation.operation is OperationType.SUBSCRIPTION


def graphql_router(
    source: HistoryService | ServesHistory,
    *,
    dependencies: Sequence[params.Depends] | None = None,
    scope: RunScope | None = None,
    persisted: PersistedDocuments | None = None,
) -> HistoryGraphQLRouter:
    """The GraphQL endpoint serving a history (a ``HistoryService``, or what
    has one, such as the plugin) at the router's root.

    ``dependencies`` (say, authentication) guard queries and websockets alike;
    on a websocket a dependency gets a ``WebSocket`` where a request would
    come, so ask for ``starlette.requests.HTTPConnection`` to serve both.
    ``scope`` narrows each request's reads (a websocket connection's, once);
    ``persisted`` holds the persisted operations (APQ with 1,000 documents,
    no allow-list, when not given).
    """

    service = history_service(source)
    limits = service.limits

    async def get_context(connection: HTTPConnection) -> HistoryContext:
        # one context per request, or per websocket connection
        assert isinstance(connection, Request | WebSocket)
        scoped = await scoped_service(service, scope, connection)
        return HistoryContext(scoped, cache=connection.scope["type"] == "http")

    router = HistoryGraphQLRouter(
        build_schema(limits),
        context_getter=get_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        # a backstop counting queries in flight too; runUpdates enforces
        # `max_subscriptions` itself, with a coded error
        max_subscriptions_per_connection=limits.max_subscriptions
        + _MAX_OTHER_OPERATIONS,
        dependencies=dependencies,
    )
    router.max_tokens = limits.max_tokens
    router.persisted = persisted or PersistedDocuments()
    return router
