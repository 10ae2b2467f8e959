"""What a compiled GraphQL read selects (specs the GraphQL layer builds,
hashable: they key the statement cache) and the SQL rendering each value as
Strawberry's execution renders it: times as ``datetime.isoformat()`` in UTC,
durations as floats, enums by name.

A JSON object is written as a row whose columns are named by its keys
(``json_object``): PostgreSQL turns a row into compact JSON in about three
quarters of the time ``json_build_object`` takes, which also pads every key
and value with spaces."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.ext.compiler import compiles

from ..core.paging import RunOrder

#: The most fields one JSON object of the statement may hold (larger
#: selections run on Strawberry's execution).
MAX_OBJECT_FIELDS = 50
#: The alias of an object's row: quoted, and no GraphQL name, so no key of
#: the object can shadow it.
_ROW = '"row$"'


@dataclass(frozen=True, slots=True)
class Const:
    """A field whose value is a constant string (``__typename``)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Scalar:
    """A field read from the row: a run's field by its GraphQL name, or a
    connection's (``totalCount``, ``cursor``, ``hasNextPage``...)."""

    key: str
    field: str


@dataclass(frozen=True, slots=True)
class ErrorObject:
    """A run's ``error``: null unless it failed with an exception."""

    key: str
    fields: tuple[Const | Scalar, ...]


@dataclass(frozen=True, slots=True)
class Lineage:
    """A run's ``parent`` or ``root``, read in slot ``slot``."""

    key: str
    column: str
    slot: int
    run: RunSpec


@dataclass(frozen=True, slots=True)
class Node:
    """An edge's node."""

    key: str
    run: RunSpec


@dataclass(frozen=True, slots=True)
class Edges:
    """A connection's edges."""

    key: str
    fields: tuple[Const | Scalar | Node, ...]


@dataclass(frozen=True, slots=True)
class PageInfo:
    """A connection's page info."""

    key: str
    fields: tuple[Const | Scalar, ...]


@dataclass(frozen=True, slots=True)
class Connection:
    """A page of up to ``size`` runs (``runs``, or a run's ``children`` when
    ``children``), read in slot ``slot``; the filter is the slot's condition."""

    key: str
    slot: int
    fields: tuple[Const | Scalar | Edges | PageInfo, ...]
    size: int
    order: RunOrder
    backward: bool
    has_start: bool
    probe: bool
    children: bool


@dataclass(frozen=True, slots=True)
class RunById:
    """``run(id)`` or ``node(id)`` (one id, ``p<slot>_id``) or ``nodes(ids)``
    (``many``: ``p<slot>_ids``), read in slot ``slot``."""

    key: str
    slot: int
    run: RunSpec
    many: bool


RunSpec = tuple[Const | Scalar | ErrorObject | Lineage | Connection, ...]
RootSpec = tuple[Const | Connection | RunById, ...]


@dataclass(frozen=True, slots=True)
class Rendering:
    """How values render: the stored value of each enum member by GraphQL
    name, and whether the live registry's tags (``live_tags``) fill in."""

    states: tuple[tuple[str, str], ...]
    priorities: tuple[tuple[str, str], ...]
    live_tags: bool


def literal(text: str) -> sa.ColumnElement[str]:
    """A string constant written into the SQL (never client input)."""
    return sa.literal_column("'" + text.replace("'", "''") + "'", sa.Text)


def concat(*parts: Any) -> sa.ColumnElement[Any]:
    return reduce(lambda a, b: a.op("||")(b), parts)


class JsonObject(sa.ColumnElement[Any]):
    """A JSON object as a row, ``(SELECT r FROM (SELECT v AS "key", ...) r)``:
    a value of a JSON object or array is written as the object; at the top,
    ``to_json`` it. The values may refer to the enclosing query's columns."""

    inherit_cache = False  # compiled once per shape (``CompiledReads``)
    type = JSON()

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = tuple(pairs)

    @property
    def _from_objects(self) -> list[Any]:
        return [found for _, value in self.pairs for found in value._from_objects]

    def get_children(self, **kw: Any) -> list[Any]:
        return [value for _, value in self.pairs]


@compiles(JsonObject)
def _compile_json_object(element: JsonObject, compiler: Any, **kw: Any) -> str:
    quote = compiler.preparer.quote_identifier
    columns = ", ".join(
        f"{compiler.process(value, **kw)} AS {quote(key)}"
        for key, value in element.pairs
    )
    return f"(SELECT {_ROW} FROM (SELECT {columns}) AS {_ROW})"


def _checked(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    if len(pairs) > MAX_OBJECT_FIELDS:
        raise ValueError(f"an object of more than {MAX_OBJECT_FIELDS} fields")
    return pairs


def json_object(pairs: list[tuple[str, Any]]) -> sa.ColumnElement[Any]:
    """The object of ``pairs``, as a row (see ``JsonObject``)."""
    return JsonObject(_checked(pairs))


def json_aggregates(pairs: list[tuple[str, Any]]) -> sa.ColumnElement[Any]:
    """The object of ``pairs`` holding aggregates of the enclosing query
    (a page's edges, ``count(*)``): built in that query, where they are
    computed, once per page."""
    args = [arg for key, value in _checked(pairs) for arg in (literal(key), value)]
    return sa.func.json_build_object(*args, type_=JSON)


def iso_time(ts: Any) -> sa.ColumnElement[Any]:
    """``ts`` as ``datetime.isoformat()`` writes it in UTC."""
    utc = sa.func.timezone(literal("UTC"), ts)
    whole = 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
    return sa.case(
        (
            sa.func.date_trunc(literal("second"), ts) == ts,
            sa.func.to_char(utc, literal(whole)),
        ),
        else_=sa.func.to_char(utc, literal('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')),
    )


def micros_text(value: Any) -> sa.ColumnElement[Any]:
    micros = sa.extract("epoch", value) * sa.literal_column("1000000")
    return sa.cast(sa.cast(micros, sa.BigInteger), sa.Text)


def duration_json(c: Any) -> sa.ColumnElement[Any]:
    """Seconds from start to end as a float; a whole number keeps ``.0``,
    as Python's float does."""
    seconds = sa.extract("epoch", c.end - c.start)
    whole = sa.and_(
        seconds == sa.func.trunc(seconds),
        sa.func.abs(seconds) < sa.literal_column("1e15"),
    )
    text = concat(sa.cast(sa.cast(seconds, sa.BigInteger), sa.Text), literal(".0"))
    return sa.case(
        (whole, sa.cast(text, JSON)),
        else_=sa.func.to_json(sa.cast(seconds, sa.Float(precision=53))),
    )


def enum_names(
    column: Any, names: tuple[tuple[str, str], ...]
) -> sa.ColumnElement[Any]:
    whens = [
        (sa.cast(column, sa.Text) == literal(stored), literal(name))
        for stored, name in names
    ]
    return sa.case(*whens)
