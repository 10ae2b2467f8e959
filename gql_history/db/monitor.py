"""The heartbeat of a process writing runs, and the reaper of lost runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping

from sqlalchemy.exc import DBAPIError

from .store import HistoryStore

logger = logging.getLogger(__name__)


class WorkerMonitor:
    """Every ``interval`` seconds: this process's heartbeat, then a pass of
    the reaper, which one process at a time runs (the others skip it).

    The reaper marks ``interrupted`` the live runs of workers silent for
    over ``grace`` seconds and the running runs past their task's timeout
    plus ``timeout_margin``. A database that does not answer is logged once
    per outage; the monitor keeps trying. It reaps only a grace after it
    starts and after an outage ends: by then every live process has beaten
    again, so none is taken for dead because all were cut off.
    """

    def __init__(
        self,
        store: HistoryStore,
        *,
        worker: str,
        interval: float,
        grace: float,
        timeout_margin: float,
        timeouts: Callable[[], Mapping[str, float]],
        waiting: Callable[[Collection[str]], Awaitable[Collection[str]]] | None = None,
        limit: int = 1000,
    ) -> None:
        self.store = store
        self.worker = worker
        self.interval = interval
        self.grace = grace
        self.timeout_margin = timeout_margin
        self.timeouts = timeouts
        self.waiting = waiting
        self.limit = limit
        self.marked = 0
        """Runs this process's reaper has marked interrupted."""
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def start(self) -> None:
        """Beat now, then every ``interval`` seconds until ``close``."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gql_history-monitor")

    async def close(self) -> None:
        """Stop beating (the reaper of another process takes over)."""
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def beat(self, *, reap: bool = True) -> int | None:
        """One heartbeat and (unless not ``reap``) one reaper pass: the runs
        it marked, or None if it did not reap or another process was."""
        await self.store.heartbeat(self.worker)
        if not reap:
            return None
        total = 0
        while True:
            marked = await self.store.reap(
                reaper=self.worker,
                grace=self.grace,
                timeout_margin=self.timeout_margin,
                timeouts=self.timeouts(),
                limit=self.limit,
                waiting=self.waiting,
            )
            if marked is None:  # another process holds the reaper's lock
                return total or None
            total += marked
            self.marked += marked
            if marked:
                logger.warning(
                    "gql_history: marked %d lost run(s) interrupted (reaper %s)",
                    marked,
                    self.worker,
                )
            if marked < self.limit:
                return total

    async def _run(self) -> None:
        # a process starting (after an outage, say) judges no other one
        # before they have had a grace to beat
        reap_from = time.monotonic() + self.grace
        while True:
            started = time.monotonic()
            try:
                await self.beat(reap=started >= reap_from)
            except Exception as exc:  # the database, mostly: never end the loop
                # once it answers again, every process's last beat is old:
                # wait a grace for the live ones to beat before judging them
                reap_from = time.monotonic() + self.grace
                if not self._failing:
                    logger.warning(
                        "gql_history: heartbeat of %s failed, retrying every %ss: %s",
                        self.worker,
                        self.interval,
                        exc,
                        exc_info=not isinstance(exc, DBAPIError | OSError),
                    )
                self._failing = True
            else:
                self._failing = False
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(self.interval - elapsed, 0))
