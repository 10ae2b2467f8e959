"""Keyset pages: their orders, what a page holds and where one starts.

The store pages over the unique ``(queued, id)`` in either direction, so a
page forward or backward from a cursor is a single SQL statement.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .cursor import Position
from .records import RunRecord


class RunOrder(enum.StrEnum):
    """The keyset orders a page can be read in, over the unique ``(queued, id)``."""

    QUEUED_DESC = "QUEUED_DESC"
    QUEUED_ASC = "QUEUED_ASC"


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
