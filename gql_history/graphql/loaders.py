"""DataLoaders built per request: lineage and node lookups of one query share
a few batched SQL statements instead of one per run."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from ..core.paging import Page, PageRequest
from ..core.records import RunRecord

if TYPE_CHECKING:
    from ..service import HistoryService

#: A children page: the parent run id, the page asked for and whether to probe
#: for rows before its start (for the page flag pointing back).
ChildrenKey = tuple[str, PageRequest, bool]


class SharedLoader[K, V](DataLoader[K, V]):
    """A DataLoader whose loads survive one waiter's cancellation.

    graphql-core cancels the pending siblings of a field that fails; a load
    they await is a future other fields may share (the same parent, say),
    and cancelling it would fail those fields with ``CancelledError``.
    """

    def load(self, key: K) -> Awaitable[V]:
        return asyncio.shield(super().load(key))


class HistoryLoaders:
    """The DataLoaders of one GraphQL request over ``service``."""

    def __init__(self, service: HistoryService, *, cache: bool = True) -> None:
        """``cache=False`` for a websocket connection: its loads batch as
        usual, but a live subscription must never see a stale run."""
        self.service = service
        self.run: DataLoader[str, RunRecord | None] = SharedLoader(
            self._load_runs, cache=cache
        )
        """A run by id, ``None`` when absent."""
        self.children: DataLoader[ChildrenKey, Page] = SharedLoader(
            self._load_children, cache=cache
        )
        """A page of a run's children, queued first first."""
        self.child_count: DataLoader[str, int] = SharedLoader(
            self._load_child_counts, cache=cache
        )
        """How many runs a run queued."""

    async def _load_runs(self, run_ids: Sequence[str]) -> list[RunRecord | None]:
        runs = {run.id: run for run in await self.service.runs(run_ids)}
        return [runs.get(run_id) for run_id in run_ids]

    async def _load_children(self, keys: Sequence[ChildrenKey]) -> list[Page]:
        """One statement per distinct page request; usually all keys share one."""
        parents: defaultdict[tuple[PageRequest, bool], list[str]] = defaultdict(list)
        for parent, request, probe in keys:
            parents[request, probe].append(parent)
        pages: dict[ChildrenKey, Page] = {}
        for (request, probe), ids in parents.items():
            found = await self.service.children_pages(ids, request, probe_before=probe)
            pages.update(((parent, request, probe), found[parent]) for parent in ids)
        return [pages[key] for key in keys]

    async def _load_child_counts(self, parent_ids: Sequence[str]) -> list[int]:
        counts = await self.service.count_children(parent_ids)
        return [counts[parent] for parent in parent_ids]
