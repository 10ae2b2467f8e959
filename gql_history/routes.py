"""REST history routes, the same paths and JSON as aio-fluid's TaskDbPlugin."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.exc import SQLAlchemyError

from .errors import InvalidQueryError, RunNotFoundError
from .models import TaskHistoryQuery, TaskRunHistory, TaskRunHistoryPage

if TYPE_CHECKING:
    from .plugin import TaskHistoryPlugin

logger = logging.getLogger(__name__)

UNAVAILABLE = HTTPException(status_code=503, detail="Task history is unavailable")


def history_router(plugin: TaskHistoryPlugin) -> APIRouter:
    """``GET ""`` (a page of runs) and ``GET /{run_id}`` (one run) for ``plugin``."""
    router = APIRouter()

    @router.get("", response_model=TaskRunHistoryPage, summary="Task run history")
    async def get_history(
        q: Annotated[TaskHistoryQuery, Query()],
    ) -> TaskRunHistoryPage:
        try:
            return await plugin.get_history(q)
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
    async def get_run(run_id: str) -> TaskRunHistory:
        try:
            return await plugin.get_run(run_id)
        except RunNotFoundError:
            raise HTTPException(status_code=404, detail="Task run not found") from None
        except (SQLAlchemyError, OSError):
            logger.exception("gql_history could not read task run %s", run_id)
            raise UNAVAILABLE from None

    return router
