"""One ``LISTEN`` connection per plugin, kept open with backoff and keepalives."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ..core.backoff import Backoff
from ..db.notifications import Change, parse_change
from ..errors import LiveUpdatesInterruptedError

logger = logging.getLogger(__name__)


class ChangeListener:
    """Listens on a table's channel over a dedicated asyncpg connection.

    The connection comes from the engine's pool, detached from it, so it
    has the engine's connection settings. It opens on the first ``wait_ready``
    and reconnects with exponential backoff whenever it is lost; since
    notifications sent while it is down are gone, ``on_lost`` is called first,
    so that subscribers end rather than miss changes.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        channel: str,
        *,
        on_change: Callable[[Change], object],
        on_lost: Callable[[], object],
        retry_delay: float = 0.1,
        max_retry_delay: float = 5.0,
        keepalive: float = 15.0,
        ready_timeout: float = 5.0,
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.on_change = on_change
        self.on_lost = on_lost
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.keepalive = keepalive
        self.ready_timeout = ready_timeout
        self.connections = 0
        """Connections opened so far (1 unless it had to reconnect)."""
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """Whether notifications are being received now."""
        return self._ready.is_set()

    @property
    def connection(self) -> Any:
        """The listening asyncpg connection, if open (for diagnostics)."""
        return self._connection

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL process id of the listening connection, if open."""
        connection = self._connection
        return None if connection is None else int(connection.get_server_pid())

    async def wait_ready(self) -> None:
        """Return once listening; raise ``LiveUpdatesInterruptedError`` if that
        takes longer than ``ready_timeout`` seconds (the database is down)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="gql-history-listen")
        try:
            async with asyncio.timeout(self.ready_timeout):
                await self._ready.wait()
        except TimeoutError:
            raise LiveUpdatesInterruptedError(
                "live updates are unavailable: cannot listen for changes in the "
                "database; try again later"
            ) from None

    async def close(self) -> None:
        """Stop listening and close the connection (``wait_ready`` opens
        another)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._disconnect()
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()

    async def _run(self) -> None:
        backoff = Backoff(self.retry_delay, self.max_retry_delay)
        while True:
            try:
                await self._connect()
            except Exception as exc:
                delay = backoff.next()
                logger.warning(
                    "gql_history cannot listen for changes, retrying in %.1fs: %s",
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            await self._watch()
            await self._disconnect()

    async def _connect(self) -> None:
        raw = await self.engine.raw_connection()
        self._connection = raw.driver_connection
        raw.detach()  # ours now: never returned to the pool, closed by us
        self._lost.clear()
        try:
            self._connection.add_termination_listener(self._on_termination)
            await self._connection.add_listener(self.channel, self._on_notification)
        except BaseException:
            await self._disconnect()
            raise
        self.connections += 1
        self._ready.set()

    async def _watch(self) -> None:
        """Wait until the connection is lost, probing it every ``keepalive``
        seconds (a dead peer may never close it)."""
        while True:
            try:
                async with asyncio.timeout(self.keepalive):
                    await self._lost.wait()
                break
            except TimeoutError:
                pass
            try:
                async with asyncio.timeout(self.keepalive):
                    await self._connection.execute("SELECT 1")
            except Exception as exc:
                logger.warning("gql_history lost its change listener: %s", exc)
                self._mark_lost()
                break

    def _on_termination(self, connection: object) -> None:
        if connection is self._connection:
            logger.warning("gql_history lost its change listener connection")
            self._mark_lost()

    def _mark_lost(self) -> None:
        if self._ready.is_set():
            self._ready.clear()
            self.on_lost()
        self._lost.set()

    def _on_notification(
        self, connection: object, pid: int, channel: str, payload: str
    ) -> None:
        try:
            change = parse_change(payload)
        except ValueError as exc:
            logger.warning("gql_history ignored a notification: %s", exc)
            return
        self.on_change(change)

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        connection.remove_termination_listener(self._on_termination)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await connection.close()
        if not connection.is_closed():
            connection.terminate()
