"""Keyset page statements over ``(key, id)``: a filtered page in any order,
and the children pages of many parents at once (by ``queued``).

The start position is a parameter (``start_key``, ``start_id``), so pages
from every start share a statement. The row limit is written in: PostgreSQL
plans ``LIMIT $n`` as if it read a tenth of the table, so a prepared page
read never took its generic plan and was planned anew on every execution,
which cost a third of the read; with the number written in, one statement
per page size is planned once per connection.
A key that may be null (``start``, ``end``, duration) is compared as its
index holds it, null replaced by what sorts last in the order.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from ..core.cursor import Position
from ..core.paging import RunOrder
from .tables import missing_key, order_key

_QUEUED = RunOrder.QUEUED_ASC


def row_limit(rows: int) -> sa.ColumnElement[int]:
    """A ``LIMIT`` of ``rows``, written into the SQL (see the module)."""
    return sa.literal_column(str(int(rows)), sa.Integer)


def start_params(start: Position | None) -> dict[str, Any]:
    """The parameters of a page starting past ``start``."""
    if start is None:
        return {}
    return {"start_key": start.key, "start_id": start.id}


def page_statement(
    table: sa.Table,
    select: sa.Select[Any],
    condition: sa.ColumnElement[bool],
    *,
    order: RunOrder,
    backward: bool,
    has_start: bool,
    probe: bool,
    rows: int,
) -> sa.Select[Any]:
    """The statement of up to ``rows`` runs of ``select`` (the run columns) where
    ``condition`` holds, read in ``order`` or, ``backward``, against it.

    With ``probe``, the probe for a row at or before the start is the left
    side of a lateral join, so the statement returns one row (of NULLs but
    for the probe, ``_has_before``, last) even when the page is empty.
    """
    descending = order.descending != backward
    c = table.c
    query = select.where(condition)
    if has_start:
        query = query.where(_past(c, order, descending, inclusive=False))
    query = query.order_by(*_order_by(c, order, descending)).limit(row_limit(rows))
    if not probe:
        return query
    before = _past(c, order, not descending, inclusive=True)
    probe_query = sa.select(
        sa.exists(sa.select(c.id).where(condition, before)).label("_has_before")
    ).subquery("probe")
    page = query.subquery("page").lateral()
    # the outer order restates the page's on its columns (no key column)
    return (
        sa.select(*page.c, probe_query.c._has_before)
        .select_from(probe_query.outerjoin(page, sa.true()))
        .order_by(*_order_by(page.c, order, descending))
    )


def children_statement(
    table: sa.Table,
    select: sa.Select[Any],
    condition: sa.ColumnElement[bool],
    *,
    descending: bool,
    has_start: bool,
    probe: bool,
    rows: int,
) -> sa.Select[Any]:
    """For each id of the ``parent_ids`` parameter, up to ``rows`` runs it
    queued where ``condition`` holds: a lateral join reads each parent's page from the
    ``(from_run_id, queued, id)`` index. Rows hold the run columns,
    ``parent_id`` and, with ``probe``, ``_has_before``; a parent without a row
    on its page has one of NULLs."""
    c = table.c
    parents = (
        sa.func.unnest(sa.bindparam("parent_ids", type_=ARRAY(sa.Text)))
        .table_valued(sa.column("parent_id", sa.Text))
        .render_derived(name="parents")
    )
    page = select.where(c.from_run_id == parents.c.parent_id, condition)
    if has_start:
        page = page.where(_past(c, _QUEUED, descending, inclusive=False))
    lateral = (
        page.order_by(*_order_by(c, _QUEUED, descending))
        .limit(row_limit(rows))
        .lateral("page")
    )
    columns: list[Any] = [*lateral.c, parents.c.parent_id]
    if probe:
        before = _past(c, _QUEUED, not descending, inclusive=True)
        earlier = sa.select(c.id).where(
            c.from_run_id == parents.c.parent_id, condition, before
        )
        columns.append(sa.exists(earlier).label("_has_before"))
    return (
        sa.select(*columns)
        .select_from(parents.outerjoin(lateral, sa.true()))
        .order_by(parents.c.parent_id, *_order_by(lateral.c, _QUEUED, descending))
    )


def _past(
    c: Any, order: RunOrder, descending: bool, *, inclusive: bool
) -> sa.ColumnElement[bool]:
    """Rows after the start position when reading ``order``'s keyset
    ``descending`` (or ascending)."""
    key = sa.tuple_(order_key(c, order.key, order.descending), c.id)
    bound = sa.tuple_(_start_key(c, order), sa.bindparam("start_id", type_=c.id.type))
    if descending:
        return key <= bound if inclusive else key < bound
    return key >= bound if inclusive else key > bound


def _start_key(c: Any, order: RunOrder) -> sa.ColumnElement[Any]:
    """The ``start_key`` parameter as the order's key compares it."""
    if order.key == "queued":
        return sa.bindparam("start_key", type_=c.queued.type)
    type_ = sa.Interval() if order.key == "duration" else c.queued.type
    param = sa.bindparam("start_key", type_=type_)
    return sa.func.coalesce(param, missing_key(order.key, order.descending))


def _order_by(c: Any, order: RunOrder, descending: bool) -> tuple[Any, ...]:
    key = order_key(c, order.key, order.descending)
    if descending:
        return key.desc(), c.id.desc()
    return key.asc(), c.id.asc()


def page_order(c: Any, order: RunOrder, backward: bool) -> tuple[Any, ...]:
    """The ORDER BY of a page read in ``order`` (or against it, ``backward``),
    on columns ``c`` holding the run's: restated over a page's rows."""
    return _order_by(c, order, order.descending != backward)


def before_start(c: Any, order: RunOrder, backward: bool) -> sa.ColumnElement[bool]:
    """Rows at or before the start position, against the reading direction:
    what the page's other flag (``has_before``) probes for."""
    return _past(c, order, order.descending == backward, inclusive=True)
