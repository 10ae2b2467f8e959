"""Turns the ``db`` argument users pass into a SQLAlchemy async engine."""

from __future__ import annotations

import json
from typing import Any, Protocol

import pydantic_core
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import HistoryError

_ASYNC_DRIVER = "postgresql+asyncpg"
_PLAIN_SCHEMES = frozenset(("postgresql", "postgres", _ASYNC_DRIVER))


class InvalidDatabaseURLError(HistoryError, ValueError):
    """Raised when a database URL is not a PostgreSQL URL."""


class HasEngine(Protocol):
    """What gql_history needs of an aio-fluid ``CrudDB``."""

    @property
    def engine(self) -> AsyncEngine: ...


DatabaseArg = HasEngine | AsyncEngine | str


def async_url(url: str) -> str:
    """``url`` with the asyncpg driver, from a plain ``postgresql://`` one too."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidDatabaseURLError(
            "not a database URL: expected postgresql://user@host:port/dbname"
        ) from None
    if parsed.drivername not in _PLAIN_SCHEMES:
        raise InvalidDatabaseURLError(
            f"unsupported database {parsed.drivername!r}: gql_history needs "
            "PostgreSQL, e.g. postgresql://user@host:port/dbname"
        )
    return parsed.set(drivername=_ASYNC_DRIVER).render_as_string(hide_password=False)


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An asyncpg engine for ``url``.

    No ping on checkout: the store retries a read whose pooled connection the
    server dropped, and the writer retries every failed write. A pool of 20
    keeps concurrent GraphQL clients from reconnecting (SQLAlchemy's default
    of 5 closes overflow connections after each use).
    """
    options.setdefault("json_serializer", dumps)
    # pydantic-core parses a run's params about four times faster than json;
    # PostgreSQL's jsonb output is always JSON it reads the same way
    options.setdefault("json_deserializer", pydantic_core.from_json)
    options.setdefault("pool_size", 20)
    options.setdefault("max_overflow", 10)
    return create_async_engine(async_url(url), **options)


def resolve_engine(db: DatabaseArg) -> tuple[AsyncEngine, bool]:
    """The engine for ``db`` and whether gql_history created (and owns) it."""
    if isinstance(db, AsyncEngine):
        return db, False
    if isinstance(db, str):
        return create_engine(db), True
    engine = getattr(db, "engine", None)
    if isinstance(engine, AsyncEngine):
        return engine, False
    raise TypeError(
        "db must be a database URL, a SQLAlchemy AsyncEngine or an aio-fluid "
        f"CrudDB, not {type(db).__name__}"
    )


def dumps(value: Any) -> str:
    """Compact JSON, as the history table stores params."""
    return json.dumps(value, separators=(",", ":"), default=str)
