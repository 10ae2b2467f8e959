"""Relay connection arguments turned into a checked keyset page request.

A connection reads forward with ``first``/``after`` or backward with
``last``/``before``.
"""

from __future__ import annotations

from ..core.cursor import CursorCodec
from ..core.paging import PageRequest, RunOrder
from ..errors import InvalidQueryError

#: Page size when neither ``first`` nor ``last`` is given.
DEFAULT_PAGE_SIZE = 50


def page_request(
    *,
    order: RunOrder,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    cursors: CursorCodec,
    max_page_size: int,
) -> PageRequest:
    """The page the Relay arguments ask for; raises ``InvalidQueryError``."""
    if first is not None and last is not None:
        raise InvalidQueryError(
            "pass either `first` (with `after`) or `last` (with `before`), not both"
        )
    backward = last is not None or (first is None and before is not None)
    if backward and after is not None:
        raise InvalidQueryError(
            "`after` pages forward: pass it with `first`, or use `before` with `last`"
        )
    if not backward and before is not None:
        raise InvalidQueryError(
            "`before` pages backward: pass it with `last`, or use `after` with `first`"
        )
    size, name = (last, "last") if backward else (first, "first")
    if size is None:
        size = min(DEFAULT_PAGE_SIZE, max_page_size)
    elif not 0 <= size <= max_page_size:
        raise InvalidQueryError(
            f"`{name}` must be between 0 and {max_page_size}, not {size}"
        )
    cursor = before if backward else after
    start = None if cursor is None else cursors.decode(cursor, order)[0]
    return PageRequest(order=order, limit=size, start=start, backward=backward)
