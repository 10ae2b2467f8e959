"""A read-only history service: GraphQL and REST over an existing history
database, with no task manager running."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI
from typing_extensions import Doc

from .plugin import TaskHistoryPlugin

if TYPE_CHECKING:
    from fluid.db import CrudDB

    from .db import DatabaseArg


def create_app(
    db: Annotated[
        CrudDB | DatabaseArg,
        Doc("An aio-fluid CrudDB, a SQLAlchemy AsyncEngine or a database URL"),
    ],
    *,
    table_name: Annotated[str, Doc("The table storing task runs")] = "fluid_tasks",
    **options: Any,
) -> FastAPI:
    """A FastAPI app serving the history in ``db`` at ``/tasks-graphql`` (GraphQL)
    and ``/tasks-history`` (REST), unless ``graphql_path``/``route_prefix`` say
    otherwise. Its plugin is ``app.state.task_history_plugin``.

    ``options`` are further ``TaskHistoryPlugin`` options, such as
    ``dependencies=[Depends(auth)]`` or ``max_page_size``. Nothing is written:
    with no task manager, ``tasks`` is empty and runs stored without tags are
    filtered and shown without them.

    Its startup freezes the objects the process holds then (``gc.freeze()``),
    as a server process that outlives them all should.
    """
    plugin = TaskHistoryPlugin(db, table_name=table_name, **options)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What imports and startup allocated lives as long as the process.
        # Frozen, the collector skips it: each full collection then takes
        # milliseconds instead of pausing a request for over 100 ms.
        gc.collect()
        gc.freeze()
        yield
        await plugin.close()

    app = FastAPI(title="Task history", lifespan=lifespan)
    app.state.task_history_plugin = plugin
    plugin.register_routes(app)
    return app
