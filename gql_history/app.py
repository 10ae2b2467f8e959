"""A read-only history service: GraphQL and REST over an existing history
database, with no task manager running."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI
from typing_extensions import Doc

from .plugin import TaskHistoryPlugin

if TYPE_CHECKING:
    from fluid.db import CrudDB

    from .db import DatabaseArg

#: Net allocations between young-generation collections while serving.
YOUNG_GC_THRESHOLD = 10_000


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

    While it runs, garbage collection is tuned for a server (``ServerGC``).
    """
    plugin = TaskHistoryPlugin(db, table_name=table_name, **options)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with server_gc.serving():
            yield
        await plugin.close()

    app = FastAPI(title="Task history", lifespan=lifespan)
    app.state.task_history_plugin = plugin
    plugin.register_routes(app)
    return app


class ServerGC:
    """Garbage collection tuned for serving while any app of the process
    runs, as it was once the last one stops.

    What the process holds at startup lives as long as it does: frozen, full
    collections skip it and take milliseconds instead of pausing a request
    for over 100 ms. The young generation is collected every
    ``YOUNG_GC_THRESHOLD`` net allocations instead of 700: a page of runs
    holds about a thousand objects until its response is sent, and a lower
    threshold traverses (and promotes) them while they are still in use.
    """

    def __init__(self) -> None:
        self.apps = 0
        self.thresholds = gc.get_threshold()

    @contextmanager
    def serving(self) -> Iterator[None]:
        if not self.apps:
            self.thresholds = gc.get_threshold()
            gc.collect()
            gc.freeze()
            gc.set_threshold(YOUNG_GC_THRESHOLD, *self.thresholds[1:])
        self.apps += 1
        try:
            yield
        finally:
            self.apps -= 1
            if not self.apps:
                gc.set_threshold(*self.thresholds)
                gc.unfreeze()


#: The process's collector, shared by its apps.
server_gc = ServerGC()
