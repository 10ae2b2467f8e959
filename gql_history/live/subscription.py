"""One live subscriber's stream: the runs it replays, then a bounded,
coalescing queue of the changes the hub offers it, each with where the
stream is once it is sent (``positions``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa

from ..core.records import RunRecord
from ..db.notifications import Snapshot
from ..errors import LiveUpdatesError, SubscriberTooSlowError
from .changes import Changed, ChangeKey, ChangeReader
from .positions import StreamPosition

#: Runs read back per statement, when replaying and when streaming.
BATCH = 200
RESUME = (
    "subscribe again with `after` set to the `resumeToken` of the last run received"
)


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """A run sent to a subscriber, and where the stream is once it is sent."""

    run: RunRecord
    xact_id: int
    """The transaction that wrote this version of the run."""
    position: StreamPosition

    @property
    def resume_token(self) -> str:
        """The token resuming the stream right after this run."""
        return self.position.token()


class SubscriptionHub(Protocol):
    """What a subscription uses of the hub feeding it (``LiveUpdates``)."""

    queue_size: int
    reader: ChangeReader
    subscriptions: set[LiveSubscription]


class LiveSubscription:
    """One subscriber's changes: a replay, then a bounded, coalescing queue."""

    def __init__(
        self, hub: SubscriptionHub, condition: sa.ColumnElement[bool], key: str
    ) -> None:
        self.hub = hub
        self.condition = condition
        self.key = key
        """Subscriptions with equal keys have equal filters."""
        self.peak = 0
        """The most runs that have waited in the queue at once."""
        self._queue: OrderedDict[str, RunUpdate] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._error: LiveUpdatesError | None = None
        self._replay: list[ChangeKey] = []
        self._resume: StreamPosition | None = None
        self._start: Snapshot | None = None

    @property
    def queued(self) -> int:
        """Runs waiting to be sent."""
        return len(self._queue)

    def begin(
        self, start: Snapshot, resume: StreamPosition | None, keys: Sequence[ChangeKey]
    ) -> None:
        """Send first the changes of ``keys``, those past ``resume`` that
        ``start`` saw; skip the queued changes ``start`` saw."""
        self._start = start
        self._resume = resume
        self._replay = list(keys)

    def offer(self, change: Changed, position: StreamPosition) -> None:
        """Queue ``change``, after which the stream is at ``position``;
        never blocks."""
        if self._error is not None:
            return
        run_id = change.run.id
        if run_id not in self._queue and len(self._queue) >= self.hub.queue_size:
            self.fail(
                SubscriberTooSlowError(
                    f"the subscriber fell more than {self.hub.queue_size} runs "
                    f"behind: {RESUME}"
                )
            )
            return
        self._queue.pop(run_id, None)  # sent in the order written
        self._queue[run_id] = RunUpdate(change.run, change.xact_id, position)
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
        """The runs of ``updates``."""
        async with contextlib.aclosing(self.updates()) as updates:
            async for update in updates:
                yield update.run

    async def updates(self) -> AsyncGenerator[RunUpdate]:
        """The replayed runs, then each change as it comes; raises the
        ``LiveUpdatesError`` that ended the subscription."""
        try:
            async for update in self._replayed():
                yield update
            while True:
                if self._error is not None:
                    raise self._error
                if not self._queue:
                    await self._wakeup.wait()
                    self._wakeup.clear()
                    continue
                _run_id, update = self._queue.popitem(last=False)
                if self._start is not None and self._start.saw(update.xact_id):
                    continue  # the replay read this change, or it came before
                yield update
        finally:
            self.close()

    async def _replayed(self) -> AsyncIterator[RunUpdate]:
        """The replay's runs still at the version it found (a later version
        comes as a change)."""
        resume, start = self._resume, self._start
        while self._replay:
            assert resume is not None and start is not None
            page, self._replay = self._replay[:BATCH], self._replay[BATCH:]
            found = await self.hub.reader.read(
                [run_id for _, run_id in page], self.condition
            )
            for xact_id, run_id in page:
                if self._error is not None:
                    raise self._error
                change = found.get(run_id)
                if change is not None and change.xact_id == xact_id:
                    position = resume.then(xact_id, run_id, start)
                    yield RunUpdate(change.run, xact_id, position)
