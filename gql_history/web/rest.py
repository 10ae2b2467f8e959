"""REST history routes, the same paths and JSON as aio-fluid's TaskDbPlugin,
and the reads behind them (the plugin's ``get_history`` and ``get_run``)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ..core.cursor import Position
from ..core.paging import PageRequest, RunOrder
from ..errors import InvalidCursorError, InvalidQueryError, RunNotFoundError
from ..service import HistoryService
from .models import DEFAULT_LIMIT, TaskHistoryQuery, TaskRunHistory, TaskRunHistoryPage
from .scope import RunScope, scoped_service

logger = logging.getLogger(__name__)

UNAVAILABLE = HTTPException(status_code=503, detail="Task history is unavailable")
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
    page = await service.page(q.run_filter(), request)
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


def history_router(service: HistoryService, scope: RunScope | None = None) -> APIRouter:
    """``GET ""`` (a page of runs) and ``GET /{run_id}`` (one run) of
    ``service``, narrowed per request by ``scope``."""
    router = APIRouter()

    @router.get("", response_model=TaskRunHistoryPage, summary="Task run history")
    async def get_history(
        q: Annotated[TaskHistoryQuery, Query()], request: Request
    ) -> TaskRunHistoryPage:
        history = await scoped_service(service, scope, request)
        try:
            return await history_page(history, q)
        except InvalidQueryError as exc:
            raise HTTPException(
                status_code=422,
                detail=[
                    {
                        "type": "value_error",
                        "loc": ["query", "cursor"],
                        "msg": str(exc),
                        "input": q.cursor,
                    }
                ],
            ) from None
        except (SQLAlchemyError, OSError):
            logger.exception("gql_history could not read the task run history")
            raise UNAVAILABLE from None

    @router.get("/{run_id}", response_model=TaskRunHistory, summary="Get a task run")
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
