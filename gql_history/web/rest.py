"""REST history routes, the same paths and JSON as aio-fluid's TaskDbPlugin,
and the reads behind them (the plugin's ``get_history`` and ``get_run``)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ..core.cursor import Position
from ..core.paging import PageRequest, RunOrder
from ..errors import InvalidCursorError, InvalidQueryError, RunNotFoundError
from ..service import HistoryService
from .models import DEFAULT_LIMIT, TaskHistoryQuery, TaskRunHistory, TaskRunHistoryPage

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
#: REST pages are newest first, as TaskDbPlugin's.
_ORDER = RunOrder.QUEUED_DESC


async def history_page(
    service: HistoryService, q: TaskHistoryQuery
) -> TaskRunHistoryPage:
    """A page of runs, newest first, and the cursor of the next page, which
    carries the query so that the next page needs only the cursor."""
    start = None
    if q.cursor:
        start, q = _continued(service, q)
    request = PageRequest(
        order=_ORDER, limit=q.limit or DEFAULT_LIMIT, start=start, backward=False
    )
    run_filter = q.run_filter()
    service.limits.check_filter(run_filter)
    page = await service.page(run_filter, request)
    cursor = ""
    if page.has_more:
        saved = q.model_dump(mode="json", exclude_none=True, exclude={"cursor"})
        cursor = service.cursor(_ORDER, page.runs[-1], saved)
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

    Parameters given with the cursor override the ones it carries.
    """
    start, saved = service.cursors.decode(q.cursor, _ORDER)
    given = q.model_dump(include=q.model_fields_set - {"cursor"})
    try:
        resumed = TaskHistoryQuery.model_validate({**(saved or {}), **given})
    except ValidationError as exc:
        raise InvalidCursorError(
            "invalid cursor: its query is no longer valid"
        ) from exc
    return start, resumed


def history_router(service: HistoryService) -> APIRouter:
    """``GET ""`` (a page of runs) and ``GET /{run_id}`` (one run) of ``service``."""
    router = APIRouter()

    @router.get(
        "",
        response_model=TaskRunHistoryPage,
        summary="Task run history",
        responses={503: _UNAVAILABLE_DOC},
    )
    async def get_history(
        q: Annotated[TaskHistoryQuery, Query()],
    ) -> TaskRunHistoryPage:
        try:
            return await history_page(service, q)
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
        "/{run_id}",
        response_model=TaskRunHistory,
        summary="Get a task run",
        responses={404: _NOT_FOUND_DOC, 503: _UNAVAILABLE_DOC},
    )
    async def get_run(run_id: str) -> TaskRunHistory:
        try:
            return await history_run(service, run_id)
        except RunNotFoundError:
            raise HTTPException(status_code=404, detail="Task run not found") from None
        except (SQLAlchemyError, OSError):
            logger.exception("gql_history could not read task run %s", run_id)
            raise UNAVAILABLE from None

    return router
