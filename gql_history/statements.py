"""A bounded cache of read statements, by the shape of what they read.

Building a SQLAlchemy select and its cache key costs more than running it
through SQLAlchemy's compiled cache; a statement whose values are all
parameters is built once per shape and reused with new values.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import sqlalchemy as sa

#: Shapes kept; past this the oldest is dropped (a filter's shape, not its
#: values, makes an entry, so real workloads hold a few dozen).
MAX_STATEMENTS = 512


class StatementCache:
    """Statements by shape, oldest dropped first once ``size`` are kept."""

    def __init__(self, size: int = MAX_STATEMENTS) -> None:
        self.size = size
        self._statements: dict[Hashable, sa.Select[Any]] = {}

    def get(self, shape: Hashable) -> sa.Select[Any] | None:
        return self._statements.get(shape)

    def put(self, shape: Hashable, statement: sa.Select[Any]) -> None:
        if len(self._statements) >= self.size:
            del self._statements[next(iter(self._statements))]
        self._statements[shape] = statement
