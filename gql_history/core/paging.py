"""Keyset pages: their orders, what a page holds and where one starts.

The store pages over a unique ``(key, id)`` in either direction, so a page
forward or backward from a cursor is a single SQL statement. The key is the
run's ``queued``, ``start``, ``end`` or duration; runs without one (not yet
started or ended) come last in both directions of an order.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .cursor import Position
from .records import RunRecord


class RunOrder(enum.StrEnum):
    """The keyset orders a page can be read in, over a unique ``(key, id)``."""

    QUEUED_DESC = "QUEUED_DESC"
    QUEUED_ASC = "QUEUED_ASC"
    START_DESC = "START_DESC"
    START_ASC = "START_ASC"
    END_DESC = "END_DESC"
    END_ASC = "END_ASC"
    DURATION_DESC = "DURATION_DESC"
    DURATION_ASC = "DURATION_ASC"

    @property
    def key(self) -> str:
        """The run field ordered by: ``queued``, ``start``, ``end`` or ``duration``."""
        return self.value.rsplit("_", 1)[0].lower()

    @property
    def descending(self) -> bool:
        """Whether the key (then the id) decreases along the order."""
        return self.value.endswith("_DESC")

    def position(self, run: RunRecord) -> Position:
        """Where ``run`` stands in this order."""
        return Position(order_key(self.key, run), run.id)


def order_key(key: str, run: RunRecord) -> datetime | timedelta | None:
    """``run``'s value of the order key ``key``; None when it has none."""
    if key != "duration":
        value: datetime | None = getattr(run, key)
        return value
    if run.start is None or run.end is None:
        return None
    return run.end - run.start


@dataclass(frozen=True, slots=True)
class Page:
    """Runs of one keyset page, in the order asked for."""

    runs: Sequence[RunRecord]
    has_more: bool
    """More runs follow the page in the direction it was read."""
    has_before: bool
    """Runs precede the page's starting position (only probed when asked)."""


EMPTY_PAGE = Page(runs=(), has_more=False, has_before=False)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Where one page starts, which way it reads and how far."""

    order: RunOrder
    limit: int
    start: Position | None
    backward: bool
