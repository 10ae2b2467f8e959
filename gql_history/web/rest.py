"""REST history routes, the same paths and JSON as aio-fluid's TaskDbPlugin,
and the reads behind them (the plugin's ``get_history`` and ``get_run``)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ..core.cursor import Position
from ..core.paging import PageRequest, RunOrder
from ..errors import (
    InvalidCursorError,
    InvalidQueryError,
    RunNotFoundError,
    SearchUnavailableError,
)
from ..service import HistoryService
from .export import ExportFormat, ExportOptions, export_lines
from .models import DEFAULT_LIMIT, TaskHistoryQuery, TaskRunHistory, TaskRunHistoryPage
from .scope import RunScope, scoped_service

logger = logging.getLogger(__name__)

UNAVAILABLE = HTTPException(status_code=503, detail="Task history is unavailable")
#: The error responses, as OpenAPI documents them.
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
_NOT_FOUND_DOC: dict[str, Any] = {
    "description": "No task run has this id",
    "content": {"application/json": {"schema": _ERROR_SCHEMA}},
}
_UNAVAILABLE_DOC: dict[str, Any] = {
    "description": "The history database cannot be reached",
    "content": {"application/json": {"schema": _ERROR_SCHEMA}},
}
#: REST pages are newest first by default, as TaskDbPlugin's.
_ORDER = RunOrder.QUEUED_DESC


async def history_page(
    service: HistoryService, q: TaskHistoryQuery
) -> TaskRunHistoryPage:
    """A page of runs in ``q.order`` (newest first by default) and the cursor
    of the next page, which carries the query so that the next page needs
    only the cursor."""
    start = None
    if q.cursor:
        start, q = _continued(service, q)
    order = q.order or _ORDER
    request = PageRequest(
        order=order, limit=q.limit or DEFAULT_LIMIT, start=start, backward=False
    )
    run_filter = q.run_filter()
    service.limits.check_filter(run_filter)
    page = await service.page(run_filter, request)
    cursor = ""
    if page.has_more:
        saved = q.model_dump(mode="json", exclude_none=True, exclude={"cursor"})
        cursor = service.cursor(order, page.runs[-1], saved)
    data = [TaskRunHistory.from_record(run) for run in page.runs]
    return TaskRunHistoryPage(data=data, cursor=cursor)


async def history_run(service: HistoryService, run_id: str) -> TaskRunHistory:
    """The run with ``run_id``; raises ``RunNotFoundError`` if there is none."""
    run = await service.run(run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    return TaskRunHistory.from_record(run)


def _continued(
    service: HistoryService, q: TaskHistoryQuery
) -> tuple[Position, TaskHistoryQuery]:
    """The position a cursor resumes from and the query it continues.

    Parameters given with the cursor override the ones it carries, but for
    an ``order`` other than the cursor's: that is refused.
    """
    cursor_order, start, saved = service.cursors.decode_any(q.cursor)
    if q.order is not None and q.order != cursor_order:
        raise InvalidCursorError(
            f"this cursor belongs to the {cursor_order} order, not {q.order}"
        )
    given = q.model_dump(include=q.model_fields_set - {"cursor"})
    try:
        resumed = TaskHistoryQuery.model_validate({**(saved or {}), **given})
    except ValidationError as exc:
        raise InvalidCursorError(
            "invalid cursor: its query is no longer valid"
        ) from exc
    return start, resumed


def history_router(service: HistoryService, scope: RunScope | None = None) -> APIRouter:
    """``GET ""`` (a page of runs) and ``GET /{run_id}`` (one run) of
    ``service``, narrowed per request by ``scope``."""
    router = APIRouter()

    @router.get(
        "",
        response_model=TaskRunHistoryPage,
        summary="Task run history",
        responses={503: _UNAVAILABLE_DOC},
    )
    async def get_history(
        q: Annotated[TaskHistoryQuery, Query()], request: Request
    ) -> TaskRunHistoryPage:
        history = await scoped_service(service, scope, request)
        try:
            return await history_page(history, q)
        except SearchUnavailableError as exc:
            raise HTTPException(
                status_code=422,
                detail=[
                    {
                        "type": "search_unavailable",
                        "loc": ["query", "search" if q.search else "error_contains"],
                        "msg": str(exc),
                        "input": q.search or q.error_contains,
                    }
                ],
            ) from None
        except InvalidQueryError as exc:
            cursor = isinstance(exc, InvalidCursorError)
            loc = ["query", "cursor"] if cursor else ["query"]
            raise HTTPException(
                status_code=422,
                detail=[
                    {
                        "type": "value_error",
                        "loc": loc,
                        "msg": str(exc),
                        "input": q.cursor if cursor else None,
                    }
                ],
            ) from None
        except (SQLAlchemyError, OSError):
            logger.exception("gql_history could not read the task run history")
            raise UNAVAILABLE from None

    @router.get(
        "/export",
        summary="Export task run history",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "One run a line (NDJSON) or a row (CSV, with a header)",
                "content": {
                    ExportFormat.NDJSON.media_type: {"schema": {"type": "string"}},
                    ExportFormat.CSV.media_type: {"schema": {"type": "string"}},
                },
            },
            503: _UNAVAILABLE_DOC,
        },
    )
    async def export_history(
        q: Annotated[TaskHistoryQuery, Query()],
        options: Annotated[ExportOptions, Query()],
        request: Request,
    ) -> StreamingResponse:
        """Every run of the query (its filters and ``order``; ``limit`` and
        ``cursor`` aside) up to ``max_rows``, as NDJSON or CSV."""
        history = await scoped_service(service, scope, request)
        try:
            lines = await export_lines(history, q, options)
        except InvalidQueryError as exc:  # text search without pg_trgm
            raise HTTPException(status_code=422, detail=str(exc)) from None
        except (SQLAlchemyError, OSError):
            logger.exception("gql_history could not export the task run history")
            raise UNAVAILABLE from None
        name = f"task-history.{options.format.value}"
        return StreamingResponse(
            lines,
            media_type=options.format.media_type,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.get(
        "/{run_id}",
        response_model=TaskRunHistory,
        summary="Get a task run",
        responses={404: _NOT_FOUND_DOC, 503: _UNAVAILABLE_DOC},
    )
    async def get_run(run_id: str, request: Request) -> TaskRunHistory:
        history = await scoped_service(service, scope, request)
        try:
            return await history_run(history, run_id)
        except RunNotFoundError:
            raise HTTPException(status_code=404, detail="Task run not found") from None
        except (SQLAlchemyError, OSError):
            logger.exception("gql_history could not read task run %s", run_id)
            raise UNAVAILABLE from None

    return router
