"""Pure Python: run records, filters, orders and pages, cursors, statistics
windows, limits and settings. No SQLAlchemy, Strawberry or FastAPI here."""

from __future__ import annotations

from .cursor import CursorCodec, Position
from .filters import RunFilter
from .limits import QueryLimits
from .paging import Page, PageRequest, RunOrder
from .records import RUN_FIELDS, RunRecord
from .tasks import LiveTasks
from .windows import Bucket, Durations, StatsWindow

__all__ = [
    "RUN_FIELDS",
    "Bucket",
    "CursorCodec",
    "Durations",
    "LiveTasks",
    "Page",
    "PageRequest",
    "Position",
    "QueryLimits",
    "RunFilter",
    "RunOrder",
    "RunRecord",
    "StatsWindow",
]
