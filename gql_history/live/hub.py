"""Live run updates: committed changes, fanned out to the subscriptions of
this process, resumable exactly from a token, across processes and replicas.

Every write stores its transaction's id in the rows it changes (``xact_id``)
and notifies the table's channel once it commits (see ``notifications``).
The notifications only wake the hub: what it sends is decided by snapshots.
The hub's position is the snapshot of its last read; each read (a step)
takes the rows whose last writer that snapshot did not see and its own
snapshot saw, under every subscriber's filter in one statement, and sends
them in ``(xact_id, id)`` order; its snapshot becomes the next position.
Transactions commit in another order than they start (``updated`` is no
order), but a snapshot is exact: a change committed while a read ran is
in the next step, never skipped, never read twice.

Each run sent carries a resume token (``positions``): the changes sent up
to it, as a snapshot and the last run id sent of a transaction part-sent.
A subscriber resuming with it (``after``), on any replica, is first sent the
rows that token does not cover and a snapshot taken as it subscribes saw,
then the steps, less what that snapshot saw: each committed change once,
in the order it became visible to the reads. A subscription is registered,
and its snapshot taken, between two steps (a lock), so the next step starts
from a snapshot taken before its own.

``since`` (a time) still works, conservatively: it resumes from the horizon
written with the last write at or before that time (every transaction below
it had ended by then), which repeats the runs changed shortly before
``since`` but never misses one.

Overflow policy: a subscription holds at most ``queue_size`` runs waiting to
be sent, coalesced by run id (a run that changes again while it waits is sent
once, as it is then, in the place of its latest change). A subscriber falling
further behind is ended with ``SubscriberTooSlowError``, and its queue freed;
it resumes by subscribing again with ``after``, which replays the runs it
missed from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from ..core.filters import RunFilter
from ..db.notifications import Change, Snapshot
from ..db.store import HistoryStore
from ..errors import (
    InvalidQueryError,
    LiveUpdatesError,
    LiveUpdatesInterruptedError,
)
from .changes import ChangeKey, ChangeReader
from .listener import ChangeListener
from .positions import StreamPosition
from .subscription import BATCH, RESUME, LiveSubscription

logger = logging.getLogger(__name__)


class LiveUpdates:
    """The subscriptions of one history table in this process."""

    def __init__(
        self,
        store: HistoryStore,
        *,
        queue_size: int = 1000,
        ready_timeout: float = 5.0,
    ) -> None:
        self.store = store
        self.queue_size = queue_size
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
        self.steps = 0
        """Reads of changes made so far (for diagnostics)."""
        self._position: Snapshot | None = None
        self._stepping = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None

    async def subscribe(
        self,
        run_filter: RunFilter | None,
        *,
        after: str | None = None,
        since: datetime | None = None,
        max_replay: int = 10_000,
    ) -> LiveSubscription:
        """A subscription to the changes of runs ``run_filter`` matches,
        starting with those the resume token ``after`` does not cover, or
        (conservatively) those changed after ``since``, when given.

        Raises ``InvalidQueryError`` for a bad token or when more than
        ``max_replay`` runs are to be replayed, and
        ``LiveUpdatesInterruptedError`` when the database cannot be listened to.
        """
        resume = _resume_position(after, since)
        condition = await self.store.condition(run_filter)
        if "xact_id" not in await self.store.present_columns():
            raise InvalidQueryError(
                "live updates need the table's `xact_id` column: upgrade the "
                "table with `gql-history upgrade`"
            )
        await self.listener.wait_ready()
        subscription = LiveSubscription(self, condition, repr(run_filter))
        keys: list[ChangeKey] = []
        try:
            async with self._stepping:  # between two steps
                alone = not self.subscriptions
                self.subscriptions.add(subscription)
                self._start_pump()
                if since is not None:
                    resume = await self.reader.since(since)
                if resume is None:
                    start = await self.reader.snapshot()
                else:
                    replay = await self.reader.replay(condition, resume, max_replay + 1)
                    start, keys = replay.snapshot, replay.keys
                if alone or self._position is None:  # none needs older changes
                    self._position = start
        except BaseException:
            subscription.close()
            raise
        if resume is not None and resume.snapshot.xmax > start.xmax:
            subscription.close()
            raise InvalidQueryError(
                "`after` is not a resume token of this database's runUpdates"
            )
        if len(keys) > max_replay:
            subscription.close()
            raise InvalidQueryError(
                f"more than {max_replay} matching runs changed since then: read "
                "them as a page of runs, then subscribe without `after`/`since`"
            )
        subscription.begin(start, resume, keys)
        return subscription

    async def close(self) -> None:
        """End every subscription and stop listening (until ``subscribe``)."""
        self._fail_all(LiveUpdatesInterruptedError("the server is shutting down"))
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None
        self._position = None
        self._wakeup = asyncio.Event()
        await self.listener.close()

    def _on_change(self, change: Change) -> None:
        """A transaction changed runs: read what changed (what, the step's
        snapshot says; the notification is only a wakeup)."""
        if self.subscriptions:
            self._wakeup.set()

    def _on_lost(self) -> None:
        self._fail_all(
            LiveUpdatesInterruptedError(
                "live updates were interrupted (the database connection was "
                f"lost): {RESUME}"
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
            async with self._stepping:
                if not self.subscriptions:
                    self._position = None  # the next subscriber starts afresh
                    continue
                if self._position is None:
                    continue
                groups: dict[str, list[LiveSubscription]] = {}
                for subscription in self.subscriptions:
                    groups.setdefault(subscription.key, []).append(subscription)
                members = list(groups.values())
                self.steps += 1
                progress = _Progress()
                try:
                    self._position = await self._step(self._position, members, progress)
                except Exception:
                    self._position = await self._step_apart(
                        self._position, members, progress
                    )

    async def _step(
        self,
        lower: Snapshot,
        members: list[list[LiveSubscription]],
        progress: _Progress,
    ) -> Snapshot:
        """Send ``members``, groups of subscribers with equal filters, the
        changes from ``lower`` on, after where ``progress`` is, each to the
        groups whose filter it matches; return the snapshot reached."""
        conditions = [group[0].condition for group in members]
        position = StreamPosition(lower)
        while True:
            step = await self.reader.step(
                conditions,
                position,
                upper=progress.upper,
                after=progress.after,
                limit=BATCH,
            )
            upper = progress.upper = step.snapshot
            for change in step.changes:
                sent = position.then(change.xact_id, change.run.id, upper)
                for group, matched in zip(members, change.matches, strict=True):
                    if matched:
                        for subscription in group:
                            subscription.offer(change, sent)
            if step.complete:
                return upper
            last = step.changes[-1]
            progress.after = (last.xact_id, last.run.id)

    async def _step_apart(
        self,
        lower: Snapshot,
        members: list[list[LiveSubscription]],
        progress: _Progress,
    ) -> Snapshot | None:
        """Step each group of subscribers on its own, on from where the shared
        read failed and to one snapshot: a failure one group's filter causes
        ends that group alone; one that every group meets (the database is
        down) ends them all."""
        failed: list[list[LiveSubscription]] = []
        error: Exception | None = None
        if progress.upper is None:
            try:
                progress.upper = await self.reader.snapshot()
            except Exception as exc:
                failed, error = members, exc
        for group in [] if failed else members:
            try:
                await self._step(lower, [group], replace(progress))
            except Exception as exc:
                failed.append(group)
                error = exc
        if len(failed) == len(members):
            logger.error("gql_history could not read changed runs", exc_info=error)
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
                        f"{RESUME}"
                    )
                )
        return progress.upper if len(failed) < len(members) else None


@dataclass(slots=True)
class _Progress:
    """How far a step has read: the snapshot it reads up to, the last key."""

    upper: Snapshot | None = None
    after: ChangeKey | None = None


def _resume_position(
    after: str | None, since: datetime | None
) -> StreamPosition | None:
    """The position of the token ``after``; refuses one with ``since``."""
    if after is None:
        return None
    if since is not None:
        raise InvalidQueryError("give `after` or `since`, not both")
    try:
        return StreamPosition.parse(after)
    except ValueError:
        raise InvalidQueryError(
            "`after` is not a resume token of runUpdates: pass the "
            "`resumeToken` of a run it sent"
        ) from None
