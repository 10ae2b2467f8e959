"""PostgreSQL: the engine, the table and its DDL, filters as SQL, reads,
upserts, retention, statistics, change notifications and the buffered writer."""

from __future__ import annotations

from .engine import create_engine, resolve_engine
from .stats import RunStats
from .store import HistoryStore, open_store
from .tables import history_table
from .writer import RunWriter, WriterStats

__all__ = [
    "HistoryStore",
    "RunStats",
    "RunWriter",
    "WriterStats",
    "create_engine",
    "history_table",
    "open_store",
    "resolve_engine",
]
