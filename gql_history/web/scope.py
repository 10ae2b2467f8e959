"""Row-level scope: which runs a request may read, decided per request.

A scope is a callable given the request (or, for a websocket, the connection,
once) that returns the run filter its reads are narrowed to. The service ANDs
it into every read (``HistoryService.scoped``); this module only calls it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.websockets import WebSocket

from ..core.filters import RunFilter
from ..service import HistoryService

#: Given the ``Request`` (or the ``WebSocket`` of a GraphQL websocket
#: connection), the filter of the runs it may read: ``None`` for all of them.
#: Async or not; raise ``fastapi.HTTPException`` to refuse the request.
RunScope = Callable[
    [Request | WebSocket], RunFilter | Awaitable[RunFilter | None] | None
]


async def scoped_service(
    service: HistoryService, scope: RunScope | None, connection: Request | WebSocket
) -> HistoryService:
    """``service`` narrowed to the runs ``scope`` lets ``connection`` read."""
    if scope is None:
        return service
    found = scope(connection)
    if inspect.isawaitable(found):
        found = await found
    if found is not None and not isinstance(found, RunFilter):
        raise TypeError(
            f"a scope returns a RunFilter or None, not {type(found).__name__}"
        )
    return service.scoped(found)
