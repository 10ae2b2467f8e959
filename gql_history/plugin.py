"""The aio-fluid plugin: records every task run and serves the history."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import sys
from collections import OrderedDict
from collections.abc import Collection, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from fastapi import FastAPI, params
from fluid import scheduler
from fluid.scheduler.common import is_in_cpu_process
from fluid.scheduler.endpoints import TaskManagerDep
from fluid.utils.dates import utcnow
from fluid.utils.dispatcher import Event
from sqlalchemy.ext.asyncio import AsyncEngine
from typing_extensions import Doc

from .core.limits import QueryLimits
from .core.names import DEFAULT_TABLE_NAME
from .core.persisted import Manifest, PersistedDocuments
from .core.records import RunRecord
from .core.tasks import LiveTasks
from .db.engine import DatabaseArg, resolve_engine
from .db.monitor import WorkerMonitor
from .db.stats import RunStats
from .db.store import HistoryStore
from .db.tables import history_table
from .db.writer import RunWriter
from .live.hub import LiveUpdates
from .service import HistoryService
from .web.app import include_history_routes
from .web.models import TaskHistoryQuery, TaskRunHistory, TaskRunHistoryPage
from .web.rest import history_page, history_run
from .web.scope import RunScope

if TYPE_CHECKING:
    from fluid.db import CrudDB

logger = logging.getLogger(__name__)

#: Every lifecycle state a run is recorded in.
RECORDED_STATES = (
    scheduler.TaskState.queued,
    scheduler.TaskState.running,
    scheduler.TaskState.success,
    scheduler.TaskState.failure,
    scheduler.TaskState.aborted,
    scheduler.TaskState.rate_limited,
    scheduler.TaskState.interrupted,
)
_MAX_ERROR_MESSAGE = 4000
_MAX_HELD_ERRORS = 10_000
#: Entries of a broker queue read at a time, looking for runs that wait.
_QUEUE_PAGE = 1000
#: The share of aio-fluid's stopping grace period the plugin's close takes.
_SHUTDOWN_SHARE = 0.8


class TaskHistoryPlugin(scheduler.TaskManagerPlugin):
    """Persist every task run in PostgreSQL and serve the history.

    A drop-in superset of aio-fluid's ``TaskDbPlugin``: same table, same
    REST routes, plus lineage, errors and tags per run, batched writes that
    survive database outages, and a GraphQL endpoint.
    """

    def __init__(
        self,
        db: Annotated[
            CrudDB | DatabaseArg,
            Doc("An aio-fluid CrudDB, a SQLAlchemy AsyncEngine or a database URL"),
        ],
        *,
        table_name: Annotated[str, Doc("The table storing task runs")] = (
            DEFAULT_TABLE_NAME
        ),
        tag: Annotated[
            str, Doc("The tag of the plugin's event handlers")
        ] = "gql_history",
        skip_tag: Annotated[str, Doc("Runs of tasks with this tag are not stored")] = (
            "skip_db"
        ),
        route_prefix: Annotated[
            str | None,
            Doc("URL of the REST history routes; `{prefix}-history` when None"),
        ] = None,
        graphql_path: Annotated[
            str | None,
            Doc("URL of the GraphQL endpoint; `{prefix}-graphql` when None"),
        ] = None,
        dashboard: Annotated[
            bool, Doc("Whether to serve the history dashboard at `{prefix}-ui`")
        ] = True,
        cursor_secret: Annotated[
            str | None,
            Doc("Key signing pagination cursors; from the environment when None"),
        ] = None,
        batch_size: Annotated[int, Doc("Most runs written by one statement")] = 500,
        max_pending: Annotated[
            int, Doc("Most runs held while the database is unreachable")
        ] = 100_000,
        max_pending_bytes: Annotated[
            int,
            Doc("Most memory (about, in bytes) those held runs may take"),
        ] = 64 * 1024 * 1024,
        close_timeout: Annotated[
            float,
            Doc(
                "Longest wait at shutdown to write pending runs; less when "
                "aio-fluid's stopping grace period leaves less"
            ),
        ] = 10.0,
        drop_log_interval: Annotated[
            float, Doc("Seconds between log lines counting dropped run updates")
        ] = 10.0,
        heartbeat_interval: Annotated[
            float,
            Doc(
                "Seconds between this process's heartbeats, and between its "
                "passes at marking lost runs; 0 turns both off"
            ),
        ] = 5.0,
        worker_grace: Annotated[
            float,
            Doc(
                "Seconds without a heartbeat after which a worker's queued "
                "and running runs are marked interrupted"
            ),
        ] = 30.0,
        timeout_margin: Annotated[
            float,
            Doc(
                "Seconds past its task's timeout after which a running run "
                "with no end recorded is marked interrupted"
            ),
        ] = 60.0,
        dependencies: Annotated[
            Sequence[params.Depends] | None,
            Doc(
                "FastAPI dependencies guarding the history routes and the "
                "GraphQL endpoint, websockets included (say, authentication)"
            ),
        ] = None,
        scope: Annotated[
            RunScope | None,
            Doc(
                "Given each request (a websocket's connection), the RunFilter "
                "of the runs it may read over GraphQL and REST; None for all"
            ),
        ] = None,
        persisted_documents: Annotated[
            Manifest | None,
            Doc(
                "An allow-list: a manifest (JSON file, or hash -> document) of "
                "the only GraphQL operations that run"
            ),
        ] = None,
        persisted_query_cache: Annotated[
            int,
            Doc("Documents kept for automatic persisted queries; 0 turns APQ off"),
        ] = 1000,
        compiled_reads: Annotated[
            bool | None,
            Doc(
                "Whether GraphQL queries the compiler covers are answered by "
                "one SQL statement returning their JSON; `GQL_HISTORY_COMPILED` "
                "(on) when None"
            ),
        ] = None,
        max_page_size: Annotated[
            int, Doc("Largest `first`/`last` of a GraphQL connection")
        ] = 100,
        max_query_depth: Annotated[
            int, Doc("Deepest field nesting of a GraphQL operation")
        ] = 12,
        max_aliases: Annotated[int, Doc("Most aliases in a GraphQL document")] = 30,
        max_tokens: Annotated[int, Doc("Most tokens in a GraphQL document")] = 5000,
        max_filter_depth: Annotated[
            int, Doc("Deepest `and`/`or`/`not` nesting of a GraphQL run filter")
        ] = 5,
        introspection: Annotated[
            bool, Doc("Whether the GraphQL schema answers introspection queries")
        ] = True,
        max_subscriptions: Annotated[
            int, Doc("Most live subscriptions one websocket connection may hold")
        ] = 10,
        max_replay: Annotated[
            int, Doc("Most runs a live subscription replays from `after` or `since`")
        ] = 10_000,
        live_queue_size: Annotated[
            int,
            Doc(
                "Most runs waiting to be sent to one live subscriber; one "
                "further behind is ended (it resumes with `after`)"
            ),
        ] = 1000,
        max_stats_buckets: Annotated[
            int, Doc("Most time buckets in a `runStats` series")
        ] = 1000,
        max_filter_values: Annotated[
            int, Doc("Most values in one list of a run filter")
        ] = 1000,
        max_filter_size: Annotated[
            int, Doc("Most conditions in one run filter, at every depth")
        ] = 100,
        max_variable_values: Annotated[
            int, Doc("Most JSON values in a GraphQL request's variables")
        ] = 10_000,
        max_cost: Annotated[
            int,
            Doc(
                "Most runs one GraphQL operation may ask for: page sizes "
                "multiplied along each path, summed"
            ),
        ] = 10_000,
        max_body_size: Annotated[
            int, Doc("Most bytes of a GraphQL request body or websocket message")
        ] = 1_048_576,
        connection_init_timeout: Annotated[
            float, Doc("Seconds a websocket may wait before `connection_init`")
        ] = 3.0,
    ) -> None:
        engine, self._owns_engine = resolve_engine(db)
        self.table: Annotated[
            sa.Table, Doc("The history table, to add to an application's metadata")
        ] = history_table(sa.MetaData(), table_name)
        if (metadata := getattr(db, "metadata", None)) is not None:
            history_table(metadata, table_name)
        self.table_name = table_name
        self.tag = tag
        self.skip_tag = skip_tag
        self.route_prefix = route_prefix
        self.graphql_path = graphql_path
        self.dashboard = dashboard
        self.dependencies = list(dependencies or ())
        self.scope = scope
        self.persisted = PersistedDocuments(
            manifest=persisted_documents, cache_size=persisted_query_cache
        )
        self.compiled_reads = compiled_reads
        self.task_manager: scheduler.TaskManager | None = None
        self.store = HistoryStore(engine, self.table, live_tasks=LiveTasks())
        self.writer = RunWriter(
            self.store,
            batch_size=batch_size,
            max_pending=max_pending,
            max_pending_bytes=max_pending_bytes,
            close_timeout=close_timeout,
            drop_log_interval=drop_log_interval,
        )
        self.service: Annotated[
            HistoryService, Doc("The read side, which the routes serve")
        ] = HistoryService(
            self.store,
            cursor_secret=cursor_secret,
            limits=QueryLimits.from_options(
                max_query_depth=max_query_depth,
                max_aliases=max_aliases,
                max_tokens=max_tokens,
                max_filter_depth=max_filter_depth,
                max_page_size=max_page_size,
                introspection=introspection,
                max_subscriptions=max_subscriptions,
                max_replay=max_replay,
                max_stats_buckets=max_stats_buckets,
                max_filter_values=max_filter_values,
                max_filter_size=max_filter_size,
                max_variable_values=max_variable_values,
                max_cost=max_cost,
                max_body_size=max_body_size,
                connection_init_timeout=connection_init_timeout,
            ),
            live_queue_size=live_queue_size,
        )
        self.worker: Annotated[
            str, Doc("This process's name in the runs it writes: host:pid:manager")
        ] = worker_name()
        self.monitor = WorkerMonitor(
            self.store,
            worker=self.worker,
            interval=heartbeat_interval,
            grace=worker_grace,
            timeout_margin=timeout_margin,
            timeouts=self.store.live_tasks.timeouts,
            waiting=self._still_queued,
        )
        self._errors: OrderedDict[str, tuple[str, str]] = OrderedDict()

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy async engine of the history database."""
        return self.store.engine

    @property
    def live(self) -> LiveUpdates:
        """The live subscriptions served by this process."""
        return self.service.live

    @property
    def stats(self) -> RunStats:
        """Run statistics and filter facets."""
        return self.service.stats

    @property
    def graphql_limits(self) -> QueryLimits:
        """What one GraphQL request may ask for."""
        return self.service.limits

    # TaskManagerPlugin

    def register(self, task_manager: scheduler.TaskManager) -> None:
        """Record the task manager's runs in every lifecycle state."""
        task_manager.state.task_history_plugin = self
        self.task_manager = task_manager
        self.store.live_tasks.registry = task_manager.registry
        if is_in_cpu_process():
            return
        self.worker = self.monitor.worker = worker_name(task_manager.manager_id)
        for state in RECORDED_STATES:
            task_manager.register_async_handler(Event(state, self.tag), self._on_event)
        task_manager.dispatcher.register_handler(
            Event(scheduler.TaskState.failure, f"{self.tag}-error"),
            self._capture_error,
        )
        task_manager.add_async_context_manager(self)

    async def _still_queued(self, run_ids: Collection[str]) -> set[str]:
        """Which of ``run_ids`` still wait on the broker's queues: a process
        that only queued a run has not lost it when it dies."""
        broker = self.task_manager.broker if self.task_manager else None
        if not isinstance(broker, scheduler.broker.RedisTaskBroker):
            return set()  # no way to look: the grace decides alone
        wanted, found = set(run_ids), set[str]()
        for priority in scheduler.TaskPriority:
            queue = broker.task_queue_name(priority)
            for first in itertools.count(0, _QUEUE_PAGE):
                page = await broker.redis_cli.lrange(
                    queue, first, first + _QUEUE_PAGE - 1
                )
                found.update(
                    run_id
                    for raw in page
                    if (run_id := json.loads(raw).get("id")) in wanted
                )
                if len(page) < _QUEUE_PAGE:
                    break
        return found

    def register_routes(
        self,
        app: Annotated[FastAPI, Doc("FastAPI app instance.")],
        prefix: Annotated[str, Doc("The URL prefix for the routes.")] = "/tasks",
        tags: Annotated[
            list[str | Enum] | None, Doc("The tags for the routes.")
        ] = None,
    ) -> None:
        """Add the REST history routes, the GraphQL endpoint and the
        dashboard to ``app``."""
        include_history_routes(
            app,
            self.service,
            prefix=prefix,
            route_prefix=self.route_prefix,
            graphql_path=self.graphql_path,
            dashboard=self.dashboard,
            tags=tags,
            dependencies=self.dependencies,
            scope=self.scope,
            persisted=self.persisted,
            compiled=self.compiled_reads,
        )

    # Lifecycle

    async def __aenter__(self) -> TaskHistoryPlugin:
        await self.writer.__aenter__()
        if self.monitor.interval > 0:
            await self.monitor.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End live subscriptions, write pending runs, then release the
        database if the plugin owns it.

        All within the time aio-fluid leaves (``shutdown_budget``); if the
        close is cancelled all the same, what is unwritten is still counted
        and logged, then the cancellation goes on.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_budget()
        try:
            await self.monitor.close()
            await self.service.close()
            await self._drain_async_dispatcher(deadline - loop.time())
            await self.writer.close(deadline - loop.time())
        except asyncio.CancelledError:
            self.writer.abandon("the shutdown was cancelled before they were written")
            raise
        finally:
            if self._owns_engine:
                await self.store.engine.dispose()

    def shutdown_budget(self) -> float:
        """Seconds the plugin's close may take.

        A TaskConsumer with stopping grace period ``g`` cancels its whole
        shutdown after ``2 g``, and its workers take up to ``g`` of that
        before plugins close: the plugin takes at most ``0.8 g`` of the rest
        (and never more than ``close_timeout``), leaving the remainder to
        aio-fluid's own closing.
        """
        budget = self.writer.close_timeout
        dispatcher = getattr(self.task_manager, "_async_dispatcher_worker", None)
        grace = getattr(dispatcher, "_stopping_grace_period", None)
        if isinstance(grace, int | float) and grace > 0:
            budget = min(budget, _SHUTDOWN_SHARE * grace)
        return budget

    async def flush(self) -> None:
        """Wait until every run event received so far is in the database."""
        await self._drain_async_dispatcher()
        await self.writer.flush()

    async def create_tables(self) -> None:
        """Create the history table and its indexes if missing (idempotent)."""
        await self.store.create_tables()

    async def upgrade_tables(self) -> list[str]:
        """Add gql_history's columns to a TaskDbPlugin table (idempotent)."""
        return await self.store.upgrade_tables()

    # Reads

    async def get_history(
        self,
        q: Annotated[TaskHistoryQuery, Doc("Filters, page size and cursor")],
    ) -> TaskRunHistoryPage:
        """A page of runs, newest first, and the cursor of the next page."""
        return await history_page(self.service, q)

    async def get_run(self, run_id: str) -> TaskRunHistory:
        """The run with ``run_id``; raises ``RunNotFoundError`` if there is none."""
        return await history_run(self.service, run_id)

    # Writes

    def _capture_error(self, task_run: scheduler.TaskRun[Any, Any]) -> None:
        """Keep the exception of a failing run: it only exists while the
        synchronous failure event is dispatched."""
        exc = sys.exception()
        if exc is None:
            return
        kind = type(exc)
        name = kind.__qualname__
        if kind.__module__ not in ("builtins", "asyncio.exceptions"):
            name = f"{kind.__module__}.{name}"
        message = str(exc)
        if not message and isinstance(exc, TimeoutError):  # aio-fluid's timeout
            message = f"ran past its {task_run.task.timeout_seconds}s timeout"
        self._errors[task_run.id] = (name, message[:_MAX_ERROR_MESSAGE])
        while len(self._errors) > _MAX_HELD_ERRORS:
            self._errors.popitem(last=False)

    async def _on_event(self, task_run: scheduler.TaskRun[Any, Any]) -> None:
        try:
            if self.skip_tag in task_run.task.tags:
                return
            self.writer.submit(self._record_of(task_run))
        except Exception:
            logger.exception("gql_history could not record run %s", task_run.id)

    def _record_of(self, task_run: scheduler.TaskRun[Any, Any]) -> RunRecord:
        error_type = error_message = None
        if task_run.state is scheduler.TaskState.failure:
            error_type, error_message = self._errors.pop(task_run.id, (None, None))
        return RunRecord(
            id=task_run.id,
            name=task_run.name,
            priority=str(task_run.priority),
            state=task_run.state,
            queued=task_run.queued or task_run.start or utcnow(),
            start=task_run.start,
            end=task_run.end,
            params=task_run.params.model_dump(mode="json"),
            from_run_id=task_run.from_run_id,
            root_run_id=task_run.root_run_id,
            retry_attempt=task_run.retry_attempt,
            error_type=error_type,
            error_message=error_message,
            tags=sorted(task_run.task.tags),
            worker=self.worker,
        )

    async def _drain_async_dispatcher(self, budget: float | None = None) -> None:
        """Wait for run events still queued in aio-fluid's async dispatcher.

        aio-fluid stops that dispatcher after this plugin and discards what it
        still holds, so the plugin waits for it to hand every event over.
        """
        worker = getattr(self.task_manager, "_async_dispatcher_worker", None)
        if worker is None:
            return
        if budget is None:
            budget = self.writer.close_timeout
        try:
            async with asyncio.timeout(max(budget, 0)):
                while worker.is_running() and worker.queue_size():  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
        except TimeoutError:
            logger.error(
                "gql_history: %d task event(s) still queued in aio-fluid at "
                "shutdown were not recorded",
                worker.queue_size(),
            )


def worker_name(manager_id: str = "") -> str:
    """This process's name among the writers of runs: host, pid and the
    start of the task manager's id (pids repeat across hosts and restarts)."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}:{manager_id[:8]}" if manager_id else name


def get_history_plugin(task_manager: TaskManagerDep) -> TaskHistoryPlugin:
    """The TaskHistoryPlugin registered with ``task_manager``.

    A FastAPI dependency in routes, or call it from a task with
    ``context.task_manager``.
    """
    plugin: TaskHistoryPlugin = task_manager.state.task_history_plugin
    return plugin
