"""Buffered, batched and outage-proof writing of run records."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from ..core.backoff import Backoff
from ..core.records import RunRecord
from .engine import dumps
from .store import HistoryStore

logger = logging.getLogger(__name__)

#: SQLSTATE classes of errors a row causes by itself: retrying cannot help.
_ROW_ERROR_CLASSES = frozenset(("22", "23"))
#: Bytes a buffered record costs besides its strings and params, and what
#: decoded params cost per byte of their JSON (both measured with
#: ``tracemalloc``: 600 bytes a small record, 6.3 KB one with 2 KB of params).
_RECORD_OVERHEAD = 600
_PARAMS_PER_JSON_BYTE = 3


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
    backoff; what does not fit (``max_pending`` runs or ``max_pending_bytes``)
    is dropped, counted and logged, never raised to the task manager. Drops
    are logged at most once per ``drop_log_interval`` seconds, with counts.
    """

    def __init__(
        self,
        store: HistoryStore,
        *,
        batch_size: int = 500,
        max_pending: int = 100_000,
        max_pending_bytes: int = 64 * 1024 * 1024,
        retry_delay: float = 0.1,
        max_retry_delay: float = 5.0,
        close_timeout: float = 10.0,
        drop_log_interval: float = 10.0,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.close_timeout = close_timeout
        self.drop_log_interval = drop_log_interval
        self.stats = WriterStats()
        self._pending: dict[str, tuple[RunRecord, int]] = {}
        self._pending_bytes = 0
        self._in_flight = 0
        self._unlogged: Counter[str] = Counter()
        self._next_log = 0.0
        self._log_timer: asyncio.TimerHandle | None = None
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pending(self) -> int:
        """Runs waiting to be written."""
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        """About how much memory the runs waiting to be written take."""
        return self._pending_bytes

    def submit(self, record: RunRecord) -> None:
        """Queue ``record`` for writing; never blocks and never raises."""
        self.stats.submitted += 1
        if not self._merge(record, _size_of(record)):
            self._drop(1, self._full())
            return
        self._idle.clear()
        self._wakeup.set()
        self._ensure_started()

    async def flush(self) -> None:
        """Wait until every submitted record is written (or dropped)."""
        await self._idle.wait()

    async def close(self, budget: float | None = None) -> None:
        """Write what is pending within ``budget`` seconds (at most ``close_timeout``),
        then stop. What is left unwritten, because time ran out or because
        the close itself was cancelled, is dropped, counted and logged."""
        self._closing = True
        self._wakeup.set()
        if self._task is None:
            self._log_drops()
            return
        limit = (
            self.close_timeout if budget is None else min(budget, self.close_timeout)
        )
        try:
            async with asyncio.timeout(max(limit, 0)):
                await asyncio.shield(self._task)
        except TimeoutError:
            self.abandon(f"the database was unreachable for {limit:.1f}s at shutdown")
        except asyncio.CancelledError:
            self.abandon("the shutdown was cancelled before they were written")
            raise
        self._task = None
        self._log_drops()

    def abandon(self, reason: str) -> None:
        """Stop writing now: drop, count and log at once what is unwritten."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._drop(len(self._pending) + self._in_flight, reason)
        self._pending.clear()
        self._pending_bytes = 0
        self._in_flight = 0
        self._idle.set()
        self._log_drops()

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

    def _merge(self, record: RunRecord, size: int) -> bool:
        """Add ``record``, keeping the furthest progress of its run."""
        current = self._pending.get(record.id)
        if current is None:
            if (
                len(self._pending) >= self.max_pending
                or self._pending_bytes + size > self.max_pending_bytes
            ):
                return False
        elif record.progress > current[0].progress:
            self._pending_bytes -= current[1]
        else:
            return True
        self._pending[record.id] = (record, size)
        self._pending_bytes += size
        return True

    def _full(self) -> str:
        return (
            f"the buffer of {self.max_pending} runs or "
            f"{self.max_pending_bytes} bytes is full"
        )

    def _drop(self, count: int, reason: str) -> None:
        """Count ``count`` dropped updates; log them now, or with the next
        log line, at most one per ``drop_log_interval`` (one per reason)."""
        if not count:
            return
        self.stats.dropped += count
        self._unlogged[reason] += count
        now = time.monotonic()
        if now >= self._next_log:
            self._log_drops()
        elif self._log_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._log_timer = loop.call_later(self._next_log - now, self._log_drops)

    def _log_drops(self) -> None:
        """Log the drops counted since the last log line."""
        if self._log_timer is not None:
            self._log_timer.cancel()
            self._log_timer = None
        if not self._unlogged:
            return
        for reason, count in self._unlogged.items():
            logger.error(
                "gql_history dropped %d run update(s): %s (%d dropped in all)",
                count,
                reason,
                self.stats.dropped,
            )
        self._unlogged.clear()
        self._next_log = time.monotonic() + self.drop_log_interval

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
            record, size = self._pending.pop(run_id)
            self._pending_bytes -= size
            batch.append(record)
        self._in_flight = len(batch)
        return batch

    def _requeue(self, batch: Sequence[RunRecord]) -> None:
        self._in_flight = 0
        dropped = sum(not self._merge(record, _size_of(record)) for record in batch)
        self._drop(dropped, self._full())

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
                self._in_flight -= 1
                self._drop(1, f"the database rejected them ({_describe(exc)})")
            else:
                self._count_written(1)

    def _count_written(self, count: int) -> None:
        self._in_flight -= count
        self.stats.written += count
        self.stats.batches += 1


class _UnwrittenError(Exception):
    def __init__(self, records: list[RunRecord], cause: BaseException) -> None:
        super().__init__(f"{len(records)} run(s) unwritten")
        self.records = records
        self.cause = cause


def _size_of(record: RunRecord) -> int:
    """About the bytes ``record`` holds in memory while it waits."""
    strings = (
        record.id,
        record.name,
        record.priority,
        record.from_run_id,
        record.root_run_id,
        record.error_type,
        record.error_message,
        *(record.tags or ()),
    )
    text = sum(len(value) for value in strings if value)
    return _RECORD_OVERHEAD + text + _PARAMS_PER_JSON_BYTE * len(dumps(record.params))


def _is_row_error(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _ROW_ERROR_CLASSES


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return f"{type(orig or exc).__name__}: {orig or exc}".splitlines()[0]
