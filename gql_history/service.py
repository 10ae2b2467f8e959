"""The read side of the history: what the GraphQL and REST edges serve.

``HistoryService`` is built by the plugin over the table it writes, or by
``create_app`` and ``gql-history serve`` over a table someone else writes:
reading needs no writer and no task manager.

A service can be narrowed to a scope (``scoped``): a run filter every read
ANDs in, here and nowhere else, so each edge serving a scoped service (GraphQL
fields, subscriptions, REST) reads the same runs, and a run outside the scope
reads as missing.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, overload

from fluid.utils.dates import utcnow

from .core.cursor import CursorCodec
from .core.filters import RunFilter
from .core.limits import QueryLimits
from .core.paging import Page, PageRequest, RunOrder
from .core.records import RunRecord
from .core.settings import default_cursor_secret
from .core.tasks import LiveTasks
from .core.windows import Bucket, StatsWindow, stats_window
from .db.conditions import BoundFilter
from .db.json_reads import read_json
from .db.json_specs import RootSpec
from .db.stats import RunStats
from .db.store import HistoryStore
from .live import LiveSubscription, LiveUpdates


class HistoryService:
    """Pages, runs, lineage, statistics, facets and live subscriptions of one
    history table, with the cursors and limits its edges apply.

    ``scope``, when set, is ANDed into every read: runs it does not match are
    never counted, listed, sent or found by id.
    """

    def __init__(
        self,
        store: HistoryStore,
        *,
        cursor_secret: str | None = None,
        limits: QueryLimits | None = None,
        live_queue_size: int = 1000,
        scope: RunFilter | None = None,
    ) -> None:
        self.store = store
        self.scope = scope
        """The runs this service reads (all of them when ``None``)."""
        self.cursors = CursorCodec.from_secret(cursor_secret or default_cursor_secret())
        """Signs and checks pagination cursors (the secret from the environment
        when not given)."""
        self.limits = limits or QueryLimits()
        self.stats = RunStats(store)
        """Statistics of a window (``stats_window``) and filter facets."""
        self.live = LiveUpdates(store, queue_size=live_queue_size)
        """The live subscriptions served by this process."""

    @property
    def tasks(self) -> LiveTasks:
        """The tasks of the attached task manager (none without one)."""
        return self.store.live_tasks

    async def close(self) -> None:
        """End the live subscriptions and stop listening for changes."""
        await self.live.close()

    # Scope

    def scoped(self, scope: RunFilter | None) -> HistoryService:
        """This history narrowed to the runs ``scope`` matches as well: a view
        sharing the store, cursors, limits and live updates, cheap enough to
        build per request. ``None`` leaves it as it is."""
        if scope is None:
            return self
        view = copy.copy(self)
        view.scope = self.within(scope)
        return view

    @overload
    def within(self, run_filter: RunFilter) -> RunFilter: ...
    @overload
    def within(self, run_filter: RunFilter | None) -> RunFilter | None: ...
    def within(self, run_filter: RunFilter | None) -> RunFilter | None:
        """``run_filter`` ANDed with the scope: what every read here asks for."""
        if self.scope is None:
            return run_filter
        if run_filter is None:
            return self.scope
        return RunFilter(all_of=[self.scope, run_filter])

    # Runs

    async def page(
        self,
        run_filter: RunFilter | None,
        request: PageRequest,
        *,
        probe_before: bool = False,
    ) -> Page:
        """The page of the runs ``run_filter`` matches that ``request`` asks
        for; ``probe_before`` checks for runs before its start as well."""
        return await self.store.page(
            self.within(run_filter),
            order=request.order,
            limit=request.limit,
            start=request.start,
            backward=request.backward,
            probe_before=probe_before,
        )

    async def count(self, run_filter: RunFilter | None) -> int:
        """How many runs ``run_filter`` matches."""
        return await self.store.count(self.within(run_filter))

    async def count_up_to(self, run_filter: RunFilter | None, limit: int) -> int:
        """How many runs ``run_filter`` matches, up to ``limit``."""
        return await self.store.count_up_to(self.within(run_filter), limit)

    async def approximate_count(self, run_filter: RunFilter | None) -> int:
        """The database planner's estimate of how many runs ``run_filter`` matches."""
        return await self.store.approximate_count(self.within(run_filter))

    async def run(self, run_id: str) -> RunRecord | None:
        """The run with ``run_id``, or ``None``."""
        return await self.store.get(run_id, self.scope)

    async def runs(self, run_ids: Collection[str]) -> list[RunRecord]:
        """The runs with any of ``run_ids``, in no particular order."""
        return await self.store.get_many(run_ids, self.scope)

    def cursor(self, order: RunOrder, run: RunRecord, extra: object = None) -> str:
        """The cursor of ``run`` in ``order``, carrying ``extra`` if given."""
        return self.cursors.encode(order, order.position(run), extra)

    async def bound(self, run_filter: RunFilter | None) -> BoundFilter:
        """The SQL condition of ``run_filter`` within the scope, its values
        as parameters (raises ``SearchUnavailableError`` as reads do)."""
        return await self.store.bound(self.within(run_filter))

    async def read_json(
        self,
        root: RootSpec,
        filters: Mapping[int, BoundFilter],
        params: Mapping[str, Any],
        names: tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]],
    ) -> str:
        """The JSON text of a GraphQL response's ``data`` read in one
        statement (see ``db.json_reads``); cursors are signed in it."""
        inner, outer = self.cursors.pads()
        signed = {**params, "ipad": inner, "opad": outer}
        return await read_json(self.store, root, filters, signed, names)

    # Lineage

    async def children_pages(
        self, parent_ids: Collection[str], request: PageRequest, *, probe_before: bool
    ) -> dict[str, Page]:
        """For each of ``parent_ids``, the page of the runs it queued that
        ``request`` asks for (earliest queued first), in one statement."""
        return await self.store.children_pages(
            parent_ids,
            limit=request.limit,
            start=request.start,
            backward=request.backward,
            probe_before=probe_before,
            run_filter=self.scope,
        )

    async def count_children(self, parent_ids: Collection[str]) -> dict[str, int]:
        """How many runs each of ``parent_ids`` queued."""
        return await self.store.count_children(parent_ids, self.scope)

    # Statistics and facets

    def stats_window(self, run_filter: RunFilter | None, bucket: Bucket) -> StatsWindow:
        """The window statistics of ``run_filter`` cover, in ``bucket``s up
        to now; raises ``InvalidQueryError`` when it holds too many.

        The window is ``run_filter``'s; the runs counted in it, the scope's too.
        """
        window = stats_window(
            run_filter, bucket, now=utcnow(), max_buckets=self.limits.max_buckets
        )
        if self.scope is None:
            return window
        return replace(window, run_filter=self.within(window.run_filter))

    async def task_names(self, run_filter: RunFilter | None) -> list[tuple[str, int]]:
        """Each task name with its number of matching runs, most first."""
        return await self.stats.task_names(self.within(run_filter))

    async def task_tags(self, run_filter: RunFilter | None) -> list[tuple[str, int]]:
        """Each tag with its number of matching runs, most first."""
        return await self.stats.task_tags(self.within(run_filter))

    # Live updates

    async def subscribe(
        self,
        run_filter: RunFilter | None,
        *,
        after: str | None = None,
        since: datetime | None = None,
    ) -> LiveSubscription:
        """A subscription to the changes of the runs ``run_filter`` matches,
        replaying first those the resume token ``after`` does not cover, or
        (conservatively) those changed after ``since``."""
        return await self.live.subscribe(
            self.within(run_filter),
            after=after,
            since=since,
            max_replay=self.limits.max_replay,
        )


class ServesHistory(Protocol):
    """Anything serving a history, such as the plugin: it has a service."""

    @property
    def service(self) -> HistoryService: ...


def history_service(source: HistoryService | ServesHistory) -> HistoryService:
    """The service of ``source``, or ``source`` itself."""
    return source if isinstance(source, HistoryService) else source.service
