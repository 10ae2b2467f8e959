"""Live run updates: committed changes, fanned out to the subscriptions of
this process.

The write path notifies each committed change of the history table (see
``notifications``). One ``ChangeListener`` per plugin receives them, whatever
process wrote them; a pump reads the notified runs back in batches, in one
statement that applies every subscriber's filter in SQL, and hands each
subscription the rows it matches.

A notification names a row version (its ``updated``); a row read back with a
later version is skipped, since that version's own notification follows. So
each version a subscriber gets is sent once, and the last one always comes.
Runs are sent in the order they were written, by ``(updated, id)`` within a
write: a subscriber resuming from the ``updated`` of the last run it got
misses nothing and gets nothing twice.

Overflow policy: a subscription holds at most ``queue_size`` runs waiting to
be sent, coalesced by run id (a run that changes again while it waits is sent
once, as it is then, in the place of its latest change). A subscriber falling
further behind is ended with ``SubscriberTooSlowError``, and its queue freed;
it resumes by subscribing again with ``since``, which replays the runs it
missed from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..core.filters import RunFilter
from ..core.records import RunRecord
from ..db.notifications import Change, Snapshot, version_of
from ..db.store import HistoryStore
from ..errors import (
    InvalidQueryError,
    LiveUpdatesError,
    LiveUpdatesInterruptedError,
    SubscriberTooSlowError,
)
from .changes import ChangeReader
from .listener import ChangeListener

logger = logging.getLogger(__name__)

#: Runs read back per statement, when replaying and when streaming.
_BATCH = 200


@dataclass(frozen=True, slots=True)
class _Notified:
    """The latest notified version of a run waiting to be read back."""

    xid: int
    version: int | None


class LiveUpdates:
    """The subscriptions of one history table in this process."""

    def __init__(
        self,
        store: HistoryStore,
        *,
        queue_size: int = 1000,
        max_backlog: int = 100_000,
        ready_timeout: float = 5.0,
    ) -> None:
        self.store = store
        self.queue_size = queue_size
        self.max_backlog = max_backlog
        self.reader = ChangeReader(store)
        self.listener = ChangeListener(
            store.engine,
            store.channel,
            on_change=self._on_change,
            on_lost=self._on_lost,
            ready_timeout=ready_timeout,
        )
        self.subscriptions: set[LiveSubscription] = set()
        """The subscriptions open now."""
        self._backlog: dict[str, _Notified] = {}
        self._wakeup = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None

    async def subscribe(
        self,
        run_filter: RunFilter | None,
        *,
        since: datetime | None = None,
        max_replay: int = 10_000,
    ) -> LiveSubscription:
        """A subscription to the changes of runs ``run_filter`` matches,
        starting with those last changed after ``since`` when given.

        Raises ``InvalidQueryError`` when more than ``max_replay`` runs
        changed since then, and ``LiveUpdatesInterruptedError`` when the
        database cannot be listened to.
        """
        condition = await self.store.condition(run_filter)
        if since is not None and "updated" not in await self.store.present_columns():
            raise InvalidQueryError(
                "`since` needs the table's `updated` column: upgrade the table "
                "with `gql-history upgrade`"
            )
        await self.listener.wait_ready()
        # Registered (and listening) before the replay reads: every change
        # committed later reaches the subscription, every earlier one the replay.
        subscription = LiveSubscription(self, condition, repr(run_filter))
        self.subscriptions.add(subscription)
        self._start_pump()
        if since is None:
            return subscription
        try:
            replay = await self.reader.replay(condition, since, max_replay + 1)
        except BaseException:
            subscription.close()
            raise
        if len(replay.versions) > max_replay:
            subscription.close()
            raise InvalidQueryError(
                f"more than {max_replay} matching runs changed since {since}: "
                "read them as a page of runs, then subscribe with a later `since`"
            )
        subscription.replay(replay.versions, replay.snapshot)
        return subscription

    async def close(self) -> None:
        """End every subscription and stop listening (until ``subscribe``)."""
        self._fail_all(LiveUpdatesInterruptedError("the server is shutting down"))
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None
        self._backlog.clear()
        self._wakeup = asyncio.Event()
        await self.listener.close()

    def _on_change(self, change: Change) -> None:
        if not self.subscriptions:
            return
        backlog = self._backlog
        for run_id, _state, version in change.runs:
            # notifications come in commit order: keep it
            backlog.pop(run_id, None)
            backlog[run_id] = _Notified(change.xid, version)
        if len(self._backlog) > self.max_backlog:
            self._backlog.clear()
            self._fail_all(
                LiveUpdatesInterruptedError(
                    "live updates fell behind the database: subscribe again "
                    "with `since`"
                )
            )
        self._wakeup.set()

    def _on_lost(self) -> None:
        self._fail_all(
            LiveUpdatesInterruptedError(
                "live updates were interrupted (the database connection was "
                "lost): subscribe again with `since`"
            )
        )

    def _fail_all(self, error: LiveUpdatesError) -> None:
        for subscription in list(self.subscriptions):
            subscription.fail(error)

    def _start_pump(self) -> None:
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.create_task(self._pump(), name="gql-history-live")

    async def _pump(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._backlog:
                if not self.subscriptions:
                    self._backlog.clear()
                    break
                batch = {
                    run_id: self._backlog.pop(run_id)
                    for run_id in list(itertools.islice(self._backlog, _BATCH))
                }
                groups: dict[str, list[LiveSubscription]] = {}
                for subscription in self.subscriptions:
                    groups.setdefault(subscription.key, []).append(subscription)
                try:
                    await self._deliver(batch, list(groups.values()))
                except Exception:
                    await self._deliver_apart(batch, list(groups.values()))

    async def _deliver_apart(
        self, batch: dict[str, _Notified], members: list[list[LiveSubscription]]
    ) -> None:
        """Deliver ``batch`` to each group of subscribers on its own, after
        the shared read failed: a failure one group's filter causes ends
        that group alone; one that every group meets (the database is
        down) ends them all."""
        failed: list[list[LiveSubscription]] = []
        error: Exception | None = None
        for group in members:
            try:
                await self._deliver(batch, [group])
            except Exception as exc:
                failed.append(group)
                error = exc
        if len(failed) == len(members):
            logger.error("gql_history could not read changed runs", exc_info=error)
            self._backlog.clear()
        elif failed:
            logger.warning(
                "gql_history could not apply %d live filter(s); their "
                "subscriptions end",
                len(failed),
            )
        for group in failed:
            for subscription in group:
                subscription.fail(
                    LiveUpdatesInterruptedError(
                        "live updates were interrupted (the database failed "
                        "to read the runs this subscription's filter matches): "
                        "subscribe again with `since`"
                    )
                )

    async def _deliver(
        self, batch: dict[str, _Notified], members: list[list[LiveSubscription]]
    ) -> None:
        """Read ``batch`` back once for ``members``, groups of subscribers
        with equal filters; queue each row on the subscriptions whose filter
        it matches."""
        conditions = [group[0].condition for group in members]
        order = {run_id: index for index, run_id in enumerate(batch)}
        found = await self.reader.read(batch, conditions)
        found.sort(key=lambda item: order[item[0].id])
        for row, matches in found:
            notified = batch[row.id]
            if notified.version is not None and (
                version_of(row.updated) != notified.version
            ):
                continue  # a later version: its own notification follows
            for group, matched in zip(members, matches, strict=True):
                if matched:
                    for subscription in group:
                        subscription.offer(row, notified.xid)


class LiveSubscription:
    """One subscriber's changes: a replay, then a bounded, coalescing queue."""

    def __init__(
        self, hub: LiveUpdates, condition: sa.ColumnElement[bool], key: str
    ) -> None:
        self.hub = hub
        self.condition = condition
        self.key = key
        """Subscriptions with equal keys have equal filters."""
        self.peak = 0
        """The most runs that have waited in the queue at once."""
        self._queue: OrderedDict[str, tuple[RunRecord, int]] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._error: LiveUpdatesError | None = None
        self._replay: list[tuple[str, int]] = []
        self._snapshot: Snapshot | None = None

    @property
    def queued(self) -> int:
        """Runs waiting to be sent."""
        return len(self._queue)

    def replay(self, versions: list[tuple[str, int]], snapshot: Snapshot) -> None:
        """Send these run versions first; skip notified changes ``snapshot`` saw."""
        self._replay = list(versions)
        self._snapshot = snapshot

    def offer(self, row: RunRecord, xid: int) -> None:
        """Queue ``row`` (written by transaction ``xid``); never blocks."""
        if self._error is not None:
            return
        run_id = row.id
        if run_id not in self._queue and len(self._queue) >= self.hub.queue_size:
            self.fail(
                SubscriberTooSlowError(
                    f"the subscriber fell more than {self.hub.queue_size} runs "
                    "behind: subscribe again with `since` set to the `updated` "
                    "of the last run received"
                )
            )
            return
        self._queue.pop(run_id, None)  # sent in the order written
        self._queue[run_id] = (row, xid)
        self.peak = max(self.peak, len(self._queue))
        self._wakeup.set()

    @property
    def error(self) -> LiveUpdatesError | None:
        """What ended the subscription, if something did."""
        return self._error

    def fail(self, error: LiveUpdatesError) -> None:
        """End the subscription with ``error``, freeing what it holds."""
        if self._error is None:
            self._error = error
        self.close()
        self._replay = []
        self._wakeup.set()

    def close(self) -> None:
        """Stop receiving changes."""
        self.hub.subscriptions.discard(self)
        self._queue.clear()

    async def runs(self) -> AsyncGenerator[RunRecord]:
        """The replayed runs, then each change as it comes; raises the
        ``LiveUpdatesError`` that ended the subscription."""
        try:
            async for row in self._replayed():
                yield row
            while True:
                if self._error is not None:
                    raise self._error
                if not self._queue:
                    await self._wakeup.wait()
                    self._wakeup.clear()
                    continue
                _run_id, (row, xid) = self._queue.popitem(last=False)
                if self._snapshot is not None and self._snapshot.saw(xid):
                    continue  # the replay read this change already
                yield row
        finally:
            self.close()

    async def _replayed(self) -> AsyncIterator[RunRecord]:
        """The replay's runs still at the version it found (a later version
        comes as a change)."""
        while self._replay:
            page, self._replay = self._replay[:_BATCH], self._replay[_BATCH:]
            found = await self.hub.reader.read(
                [run_id for run_id, _ in page], [self.condition]
            )
            rows = {row.id: row for row, _ in found}
            for run_id, version in page:
                if self._error is not None:
                    raise self._error
                row = rows.get(run_id)
                if row is not None and version_of(row.updated) == version:
                    yield row
