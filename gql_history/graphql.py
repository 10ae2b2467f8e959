"""The FastAPI router of the GraphQL endpoint: GraphiQL on GET, queries on
POST (and GET), and the ``graphql-transport-ws`` websocket protocol only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pydantic_core
from cross_web import HTTPException
from fastapi import params
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from .context import HistoryContext
from .masking import BAD_USER_INPUT, code_errors
from .schema import build_schema

if TYPE_CHECKING:
    from .plugin import TaskHistoryPlugin


class HistoryGraphQLRouter(GraphQLRouter[HistoryContext, None]):
    """A GraphQLRouter whose every error response carries ``extensions.code``."""

    def encode_json(self, data: object) -> str:
        # pydantic-core's encoder: a page of runs encodes in half the time.
        return pydantic_core.to_json(data).decode()

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors the schema extension could not reach (say, a document
        # failing to parse) are coded here, on their way out.
        if result.errors:
            result.errors = code_errors(list(result.errors))
        return await super().process_result(request, result)

    async def run(  # type: ignore[override]
        self,
        request: Request | WebSocket,
        context: Any = UNSET,
        root_value: Any = UNSET,
    ) -> Response | WebSocket:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            if exc.status_code != 400:
                raise
            # A body that is not JSON, or holds no query: a GraphQL error too.
            error = {"message": exc.reason, "extensions": {"code": BAD_USER_INPUT}}
            return JSONResponse({"errors": [error]}, status_code=400)


def graphql_router(
    plugin: TaskHistoryPlugin,
    *,
    dependencies: Sequence[params.Depends] | None = None,
) -> HistoryGraphQLRouter:
    """The GraphQL endpoint serving ``plugin``'s history at the router's root.

    ``dependencies`` (say, authentication) guard queries and websockets alike;
    on a websocket a dependency gets a ``WebSocket`` where a request would
    come, so ask for ``starlette.requests.HTTPConnection`` to serve both.
    """

    async def get_context() -> HistoryContext:
        return HistoryContext(plugin)

    return HistoryGraphQLRouter(
        build_schema(plugin.graphql_limits),
        context_getter=get_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        dependencies=dependencies,
    )
