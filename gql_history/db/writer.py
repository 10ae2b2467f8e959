"""Buffered, batched and outage-proof writing of run records."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from ..core.backoff import Backoff
from ..core.records import RunRecord
from .store import HistoryStore

logger = logging.getLogger(__name__)

#: SQLSTATE classes of errors a row causes by itself: retrying cannot help.
_ROW_ERROR_CLASSES = frozenset(("22", "23"))


@dataclass(slots=True)
class WriterStats:
    """Counters of the writer's work since it was created."""

    submitted: int = 0
    written: int = 0
    batches: int = 0
    retries: int = 0
    dropped: int = 0


class RunWriter:
    """Takes run records without blocking and writes them in batches.

    Successive records of one run are coalesced while they wait, so a burst
    of events costs one row write per run. When PostgreSQL is unreachable the
    records wait in a bounded buffer and the writer retries with exponential
    backoff; what does not fit is dropped, counted and logged, never raised to
    the task manager.
    """

    def __init__(
        self,
        store: HistoryStore,
        *,
        batch_size: int = 500,
        max_pending: int = 100_000,
        retry_delay: float = 0.1,
        max_retry_delay: float = 5.0,
        close_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.close_timeout = close_timeout
        self.stats = WriterStats()
        self._pending: dict[str, RunRecord] = {}
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pending(self) -> int:
        """Runs waiting to be written."""
        return len(self._pending)

    def submit(self, record: RunRecord) -> None:
        """Queue ``record`` for writing; never blocks and never raises."""
        self.stats.submitted += 1
        if not self._merge(record):
            self._drop(1, f"the buffer of {self.max_pending} runs is full")
            return
        self._idle.clear()
        self._wakeup.set()
        self._ensure_started()

    async def flush(self) -> None:
        """Wait until every submitted record is written (or dropped)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Write what is pending, within ``close_timeout``, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(self.close_timeout):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._task.cancel()
            self._drop(len(self._pending), "the database was unreachable at shutdown")
            self._pending.clear()
        self._task = None

    async def __aenter__(self) -> RunWriter:
        self._closing = False
        self._ensure_started()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _ensure_started(self) -> None:
        if self._task is None or self._task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._task = loop.create_task(self._run(), name="gql-history-writer")

    def _merge(self, record: RunRecord) -> bool:
        """Add ``record``, keeping the furthest progress of its run."""
        current = self._pending.get(record.id)
        if current is None:
            if len(self._pending) >= self.max_pending:
                return False
            self._pending[record.id] = record
        elif record.progress > current.progress:
            self._pending[record.id] = record
        return True

    def _drop(self, count: int, reason: str) -> None:
        if count:
            self.stats.dropped += count
            logger.error(
                "gql_history dropped %d run update(s): %s (%d dropped in all)",
                count,
                reason,
                self.stats.dropped,
            )

    async def _run(self) -> None:
        backoff = Backoff(self.retry_delay, self.max_retry_delay)
        while True:
            if not self._pending:
                self._idle.set()
                if self._closing:
                    return
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            try:
                await self._write(self._take_batch())
            except _UnwrittenError as unwritten:
                self._requeue(unwritten.records)
                self.stats.retries += 1
                delay = backoff.next()
                logger.warning(
                    "gql_history could not write %d run(s), retrying in %.1fs: %s",
                    len(unwritten.records),
                    delay,
                    _describe(unwritten.cause),
                )
                await asyncio.sleep(delay)
            else:
                backoff.reset()

    def _take_batch(self) -> list[RunRecord]:
        batch: list[RunRecord] = []
        for run_id in list(self._pending)[: self.batch_size]:
            batch.append(self._pending.pop(run_id))
        return batch

    def _requeue(self, batch: Sequence[RunRecord]) -> None:
        dropped = sum(not self._merge(record) for record in batch)
        self._drop(dropped, f"the buffer of {self.max_pending} runs is full")

    async def _write(self, batch: list[RunRecord]) -> None:
        """Write ``batch``; rows the database rejects on their own are dropped.

        Raises ``_UnwrittenError`` with the records still to write when the
        database fails for a reason a retry may cure.
        """
        try:
            await self.store.upsert(batch)
        except Exception as exc:
            if not _is_row_error(exc):
                raise _UnwrittenError(batch, exc) from exc
        else:
            self._count_written(len(batch))
            return
        for index, record in enumerate(batch):
            try:
                await self.store.upsert([record])
            except Exception as exc:
                if not _is_row_error(exc):
                    raise _UnwrittenError(batch[index:], exc) from exc
                self._drop(1, f"run {record.id} was rejected: {_describe(exc)}")
            else:
                self._count_written(1)

    def _count_written(self, count: int) -> None:
        self.stats.written += count
        self.stats.batches += 1


class _UnwrittenError(Exception):
    def __init__(self, records: list[RunRecord], cause: BaseException) -> None:
        super().__init__(f"{len(records)} run(s) unwritten")
        self.records = records
        self.cause = cause


def _is_row_error(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _ROW_ERROR_CLASSES


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return f"{type(orig or exc).__name__}: {orig or exc}".splitlines()[0]
