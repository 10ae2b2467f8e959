"""The FastAPI router of the GraphQL endpoint: GraphiQL (served offline) on a
browser's GET, queries on POST (and GET), and the ``graphql-transport-ws``
websocket protocol only.

Persisted operations are resolved here, before Strawberry sees a request or
a websocket ``subscribe``: a hash becomes its document, or the request is
refused with a coded error (``core.persisted`` decides which).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, cast

import pydantic_core
from cross_web import HTTPException
from fastapi import params
from graphql import (
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    parse,
)
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
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
from ..core.settings import compiled_reads
from ..errors import InvalidQueryError
from ..graphql.compiled import RawData
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
from .pages import graphiql_html, root_path
from .prepared import prepared_data
from .scope import RunScope, scoped_service

#: Queries and mutations a websocket connection may run at once, besides its
#: live subscriptions.
_MAX_OTHER_OPERATIONS = 20
#: The websocket close code of a message over the size limit (RFC 6455).
MESSAGE_TOO_BIG = 1009


class _SizedWebSocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's websocket adapter, closing the connection on a message
    larger than the router's ``max_body_size`` before decoding it."""

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object]:
        limits: QueryLimits = getattr(self.view, "limits", QueryLimits())
        limit = limits.max_body_size
        while self.ws.application_state != WebSocketState.DISCONNECTED:
            try:
                text = await self.ws.receive_text()
            except KeyError as exc:
                raise NonTextMessageReceived from exc
            except WebSocketDisconnect:
                return
            if len(text) > limit // 4 and len(text.encode()) > limit:
                reason = f"message over {limit} bytes"
                await self.ws.close(code=MESSAGE_TOO_BIG, reason=reason)
                return
            try:
                yield self.view.decode_json(text)
            except json.JSONDecodeError as exc:
                if not ignore_parsing_errors:
                    raise NonJsonMessageReceived from exc


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
    operations (and enforcing the allow-list) on ``subscribe``, and quiet
    when a client goes away while it is sent results: that is no server
    error."""

    async def handle_task_exception(self, error: Exception) -> None:
        if not isinstance(error, WebSocketDisconnected):
            await super().handle_task_exception(error)

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
    """A GraphQLRouter whose every error response carries ``extensions.code``,
    and which refuses bodies and messages over the size limit unread."""

    websocket_adapter_class = _SizedWebSocketAdapter
    graphql_transport_ws_handler_class = _TransportWSHandler
    limits = QueryLimits()
    """The limits it enforces itself (the schema enforces the others)."""

    def decode_json(self, data: str | bytes) -> object:
        try:
            return json.loads(data)
        except (UnicodeDecodeError, RecursionError) as exc:
            # raised as what Strawberry reports as JSON that does not parse
            raise json.JSONDecodeError(str(exc), "", 0) from exc

    def parse_json(self, data: str | bytes) -> Any:
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            raise HTTPException(
                400, "the request must be a JSON object, not a JSON scalar"
            )
        return parsed

    persisted = PersistedDocuments()
    """The documents requests may name by hash, and the allow-list if any."""
    static_path = "/tasks-static"
    """Where GraphiQL's assets are served."""

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A browser's GET opens GraphiQL, with `?query=` in its editor; other
        # GETs with a query (curl, fetch) execute it, as does a GET naming a
        # persisted query, which asks for its result.
        if request.method != "GET" or "extensions" in request.query_params:
            return False
        accept = request.headers.get("accept", "")
        if "text/html" in accept:
            return True
        return request.query_params.get("query") is None and "*/*" in accept

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(graphiql_html(root_path(request) + self.static_path))

    def encode_json(self, data: object) -> str:
        # pydantic-core's encoder: a page of runs encodes in half the time.
        # A str, not bytes: websocket messages must go out as text frames.
        # A compiled read's data is JSON text already: written in as it is.
        if isinstance(data, list):
            if not any(_raw(item) for item in data):
                return pydantic_core.to_json(data).decode()
            return "[" + ",".join(self.encode_json(item) for item in data) + "]"
        raw = _raw(data)
        if raw is None:
            return pydantic_core.to_json(data).decode()
        assert isinstance(data, dict)
        rest = {name: value for name, value in data.items() if name != "data"}
        if not rest:
            return '{"data":' + raw.text + "}"
        return '{"data":' + raw.text + "," + pydantic_core.to_json(rest).decode()[1:]

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
        operation = _operation(request_data, self.limits.max_tokens)
        # A plain request would run a subscription as a query, answering null.
        if operation is not None and operation.operation is OperationType.SUBSCRIPTION:
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
        if isinstance(request, Request):
            if too_large := await self._read(request):
                return too_large
            prepared = await prepared_data(
                request, context, self.schema, self.persisted
            )
            if prepared is not None:
                sub_response = context.response or Response()  # headers set
                return self.create_response({"data": RawData(prepared)}, sub_response)
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
            return _error_response(exc.reason, 400)

    async def _read(self, request: Request) -> Response | None:
        """Read the body of ``request`` up to the size limit, for Strawberry
        to find it read; a 413 response if the body or query string is over."""
        limit = self.limits.max_body_size
        length = request.headers.get("content-length", "")
        if len(request.scope["query_string"]) > limit or (
            length.isdigit() and int(length) > limit
        ):
            return _too_large(limit)
        if request.method != "POST":
            return None
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _too_large(limit)
        request._body = bytes(body)  # what Starlette's `body()` returns
        return None


def _raw(response: object) -> RawData | None:
    """The compiled ``data`` of a response, if it has one."""
    if isinstance(response, dict):
        data = response.get("data")
        if isinstance(data, RawData):
            return data
    return None


def _too_large(limit: int) -> JSONResponse:
    return _error_response(
        f"the request is over {limit} bytes: send a smaller one", 413
    )


def _error_response(message: str, status_code: int) -> JSONResponse:
    error = {"message": message, "extensions": {"code": BAD_USER_INPUT}}
    return JSONResponse({"errors": [error]}, status_code=status_code)


def _operation(
    data: GraphQLRequestData, max_tokens: int
) -> OperationDefinitionNode | None:
    """The operation of ``data`` if it may be a subscription (only documents
    naming one are parsed here)."""
    if not data.query or "subscription" not in data.query:
        return None
    try:
        document = parse(data.query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return None  # reported by the schema, as for any request
    return get_operation_ast(document, data.operation_name)


def graphql_router(
    source: HistoryService | ServesHistory,
    *,
    dependencies: Sequence[params.Depends] | None = None,
    static_path: str = "/tasks-static",
    scope: RunScope | None = None,
    persisted: PersistedDocuments | None = None,
    compiled: bool | None = None,
) -> HistoryGraphQLRouter:
    """The GraphQL endpoint serving a history (a ``HistoryService``, or what
    has one, such as the plugin) at the router's root.

    ``dependencies`` (say, authentication) guard queries and websockets alike;
    on a websocket a dependency gets a ``WebSocket`` where a request would
    come, so ask for ``starlette.requests.HTTPConnection`` to serve both.
    GraphiQL loads its assets from ``static_path`` (see ``include_history_routes``).
    ``scope`` narrows each request's reads (a websocket connection's, once);
    ``persisted`` holds the persisted operations (APQ with 1,000 documents,
    no allow-list, when not given). ``compiled`` (``GQL_HISTORY_COMPILED``
    when not given, on by default) answers the queries the compiler covers
    with one SQL statement returning their JSON (``graphql.compiled``); off,
    every query runs on Strawberry's execution.
    """

    service = history_service(source)
    limits = service.limits
    compile_reads = compiled_reads() if compiled is None else compiled

    async def get_context(connection: HTTPConnection) -> HistoryContext:
        # one context per request, or per websocket connection
        assert isinstance(connection, Request | WebSocket)
        scoped = await scoped_service(service, scope, connection)
        http = connection.scope["type"] == "http"
        return HistoryContext(scoped, cache=http, compiled=http and compile_reads)

    router = HistoryGraphQLRouter(
        build_schema(limits),
        context_getter=get_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        # a backstop counting queries in flight too; runUpdates enforces
        # `max_subscriptions` itself, with a coded error
        max_subscriptions_per_connection=limits.max_subscriptions
        + _MAX_OTHER_OPERATIONS,
        connection_init_wait_timeout=timedelta(seconds=limits.connection_init_timeout),
        dependencies=dependencies,
    )
    router.limits = limits
    router.static_path = static_path
    router.persisted = persisted or PersistedDocuments()
    return router
