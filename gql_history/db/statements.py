"""Reads: compiled by SQLAlchemy, run on the driver connection, the one
path every read of the history takes.

Building a SQLAlchemy select, finding it in the compiled cache and turning
asyncpg's records into SQLAlchemy rows costs about as much as the query
itself for a page of runs. A read whose values are all parameters is built
and compiled once per shape (which filter fields, which direction), then run
with asyncpg directly; its rows stay asyncpg records. Other reads
(statistics, live changes) are compiled each time and run the same way.

These reads reach asyncpg without passing through SQLAlchemy's execution, so
its ``echo`` and cursor events do not see them: trace them at the driver
(asyncpg's query loggers, or an asyncpg instrumentation).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from ..core.records import RUN_FIELDS, RunRecord
from ..core.tasks import LiveTasks

#: Shapes kept; past this the oldest is dropped (a filter's shape, not its
#: values, makes an entry, so real workloads hold a few dozen).
MAX_STATEMENTS = 512


class RunRow(asyncpg.Record):
    """A record read on the driver: columns by position, by name, or as
    attributes like a SQLAlchemy row's."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_RUN_WIDTH = len(RUN_FIELDS)


def run_records(rows: Sequence[Any], live_tasks: LiveTasks) -> list[RunRecord]:
    """The records of rows selecting ``RUN_FIELDS`` first (as ``select_runs``
    does); a run stored without tags gets its live task's.

    This is the one place rows become runs, once for a whole page.
    """
    records = [RunRecord(*row[:_RUN_WIDTH]) for row in rows]
    for record in records:
        if record.tags is None:
            record.tags = live_tasks.tags_of(record.name) or []
        if record.params is None:
            record.params = {}
    return records


@dataclass(frozen=True, slots=True)
class CompiledRead:
    """A read statement's SQL, and how each of its parameters is bound."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    values: Mapping[str, Any]
    """The values the statement was built with."""

    @classmethod
    def compile(cls, statement: sa.Select[Any], dialect: Dialect) -> CompiledRead:
        """``statement`` compiled for ``dialect``."""
        compiled = statement.compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        )
        names = tuple(compiled.positiontup or ())
        processors = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        )
        return cls(str(compiled), names, processors, compiled.params)

    def args(self, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The driver's positional arguments for ``params`` by name, or for
        the values the statement was built with."""
        values = self.values if params is None else params
        return [
            values[name] if process is None else process(values[name])
            for name, process in zip(self.names, self.processors, strict=True)
        ]


#: Driver errors that may mean the connection died (then it is closed).
_DRIVER_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)


class CompiledReads:
    """Compiled reads of one engine by shape (the oldest dropped first once
    ``size`` are kept), and their execution on its pooled connections."""

    def __init__(self, engine: AsyncEngine, size: int = MAX_STATEMENTS) -> None:
        self.engine = engine
        self.size = size
        self._reads: dict[Hashable, CompiledRead] = {}

    def __len__(self) -> int:
        return len(self._reads)

    def get(self, shape: Hashable, build: Callable[[], sa.Select[Any]]) -> CompiledRead:
        """The read of ``shape``, compiled from ``build()`` the first time."""
        read = self._reads.get(shape)
        if read is None:
            if len(self._reads) >= self.size:
                del self._reads[next(iter(self._reads))]
            dialect = self.engine.dialect
            read = self._reads[shape] = CompiledRead.compile(build(), dialect)
        return read

    async def fetch_statement(self, statement: sa.Select[Any]) -> Sequence[RunRow]:
        """The rows of a statement read once (compiled for this call)."""
        return await self.fetch(CompiledRead.compile(statement, self.engine.dialect))

    async def fetch(
        self, read: CompiledRead, params: Mapping[str, Any] | None = None
    ) -> Sequence[RunRow]:
        """The rows of ``read`` with ``params`` (else the values it was built
        with), outside any transaction.

        A pooled connection the server dropped fails the first read after
        it; as SQLAlchemy does on a disconnect, the pool's connections are
        then all replaced (the others most likely died too) and the read is
        retried once.
        """
        args = read.args(params)
        for retry in (False, True):
            async with self.engine.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                assert driver is not None
                try:
                    rows: Sequence[RunRow] = await driver.fetch(
                        read.sql, *args, record_class=RunRow
                    )
                    return rows
                except _DRIVER_ERRORS:
                    if retry or not driver.is_closed():
                        raise
            await self.engine.dispose(close=False)
        raise AssertionError("unreachable")
