"""The FastAPI side: mounting the history's routes on an app, and a
read-only history service (``create_app``) over an existing database, with
no task manager running."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from fastapi import FastAPI, params
from typing_extensions import Doc

from ..core.limits import QueryLimits
from ..core.names import DEFAULT_TABLE_NAME
from ..core.persisted import Manifest, PersistedDocuments
from ..db.engine import DatabaseArg, resolve_engine
from ..db.store import HistoryStore
from ..db.tables import history_table
from ..service import HistoryService
from .graphql_router import graphql_router
from .pages import dashboard_router, serve_docs_offline, static_files
from .rest import history_router
from .scope import RunScope

if TYPE_CHECKING:
    from fluid.db import CrudDB

#: Net allocations between young-generation collections while serving.
YOUNG_GC_THRESHOLD = 10_000


def include_history_routes(
    app: FastAPI,
    service: HistoryService,
    *,
    prefix: str = "/tasks",
    route_prefix: str | None = None,
    graphql_path: str | None = None,
    dashboard: bool = True,
    tags: list[str | Enum] | None = None,
    dependencies: Sequence[params.Depends] = (),
    scope: RunScope | None = None,
    persisted: PersistedDocuments | None = None,
    compiled: bool | None = None,
) -> None:
    """Add the REST routes at ``{prefix}-history``, the GraphQL endpoint (and
    GraphiQL) at ``{prefix}-graphql`` (unless ``route_prefix``/``graphql_path``
    say otherwise) and, with ``dashboard``, the dashboard at ``{prefix}-ui``,
    all guarded by ``dependencies`` and narrowed by ``scope``; ``persisted``
    holds the endpoint's persisted operations; ``compiled`` turns the
    GraphQL reads compiled to SQL on or off (``GQL_HISTORY_COMPILED`` when
    None).

    The pages' assets are served from the package at ``{prefix}-static``,
    and the app's ``/docs`` and ``/redoc`` are replaced by pages loading
    theirs from there too, so no page needs another host.
    """
    static_path = f"{prefix}-static"
    graphql_path = graphql_path or f"{prefix}-graphql"
    history_path = route_prefix or f"{prefix}-history"
    app.include_router(
        history_router(service, scope),
        prefix=history_path,
        tags=tags,
        dependencies=list(dependencies),
    )
    app.include_router(
        graphql_router(
            service,
            dependencies=dependencies,
            static_path=static_path,
            scope=scope,
            persisted=persisted,
            compiled=compiled,
        ),
        prefix=graphql_path,
        tags=tags,
        include_in_schema=False,  # GraphQL describes itself, not in OpenAPI
    )
    if dashboard:
        app.include_router(
            dashboard_router(
                static_path=static_path,
                graphql_path=graphql_path,
                export_path=f"{history_path}/export",
                dependencies=dependencies,
            ),
            prefix=f"{prefix}-ui",
        )
    app.mount(static_path, static_files(), name=f"{prefix.strip('/')}-static")
    serve_docs_offline(app, static_path)


def create_app(
    db: Annotated[
        CrudDB | DatabaseArg,
        Doc("An aio-fluid CrudDB, a SQLAlchemy AsyncEngine or a database URL"),
    ],
    *,
    table_name: Annotated[str, Doc("The table storing task runs")] = (
        DEFAULT_TABLE_NAME
    ),
    route_prefix: Annotated[
        str | None, Doc("URL of the REST routes; `/tasks-history` when None")
    ] = None,
    graphql_path: Annotated[
        str | None, Doc("URL of the GraphQL endpoint; `/tasks-graphql` when None")
    ] = None,
    dashboard: Annotated[
        bool, Doc("Whether to serve the history dashboard at `/tasks-ui`")
    ] = True,
    dependencies: Annotated[
        Sequence[params.Depends] | None,
        Doc("FastAPI dependencies guarding every route (say, authentication)"),
    ] = None,
    cursor_secret: Annotated[
        str | None, Doc("Key signing pagination cursors; from the environment")
    ] = None,
    scope: Annotated[
        RunScope | None,
        Doc(
            "Given each request (a websocket's connection), the RunFilter of "
            "the runs it may read; None for all"
        ),
    ] = None,
    persisted_documents: Annotated[
        Manifest | None,
        Doc(
            "An allow-list: a manifest (JSON file, or hash -> document) of the "
            "only GraphQL operations that run"
        ),
    ] = None,
    persisted_query_cache: Annotated[
        int, Doc("Documents kept for automatic persisted queries; 0 turns APQ off")
    ] = 1000,
    live_queue_size: Annotated[
        int, Doc("Most runs waiting to be sent to one live subscriber")
    ] = 1000,
    compiled_reads: Annotated[
        bool | None,
        Doc(
            "Whether GraphQL queries the compiler covers are answered by one "
            "SQL statement returning their JSON; `GQL_HISTORY_COMPILED` (on) "
            "when None"
        ),
    ] = None,
    **limits: Annotated[
        Any, Doc("Limits, as the plugin names them (`max_page_size`, ...)")
    ],
) -> FastAPI:
    """A FastAPI app serving the history in ``db``: GraphQL (and GraphiQL) at
    ``/tasks-graphql``, REST at ``/tasks-history`` and the dashboard at
    ``/tasks-ui``, with the API docs at ``/docs`` and ``/redoc``. Its service is
    ``app.state.history_service``.

    Nothing is written: with no task manager, ``tasks`` is empty and runs
    stored without tags are filtered and shown without them. While it runs,
    garbage collection is tuned for a server (``ServerGC``).
    """
    engine, owns_engine = resolve_engine(db)
    store = HistoryStore(engine, history_table(sa.MetaData(), table_name))
    service = HistoryService(
        store,
        cursor_secret=cursor_secret,
        limits=QueryLimits.from_options(**limits),
        live_queue_size=live_queue_size,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with server_gc.serving():
            yield
        await service.close()
        if owns_engine:
            await engine.dispose()

    app = FastAPI(title="Task history", lifespan=lifespan)
    app.state.history_service = service
    include_history_routes(
        app,
        service,
        route_prefix=route_prefix,
        graphql_path=graphql_path,
        dashboard=dashboard,
        dependencies=dependencies or (),
        scope=scope,
        persisted=PersistedDocuments(
            manifest=persisted_documents, cache_size=persisted_query_cache
        ),
        compiled=compiled_reads,
    )
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
