"""What PostgreSQL can hold: text without NUL or lone surrogates, JSON
without NaN or infinities.

Client input that breaks these rules matches no stored value; checked
before any SQL is built, it is a client's mistake instead of a database
error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InvalidQueryError


def storable(value: str) -> bool:
    """Whether PostgreSQL ``text`` can hold ``value`` (no NUL, valid UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def check_texts(values: Iterable[str], what: str) -> None:
    """Raise ``InvalidQueryError`` naming ``what`` if a value is not storable."""
    for value in values:
        if not storable(value):
            raise InvalidQueryError(
                f"`{what}` holds {value!r}: NUL characters and lone surrogates "
                "are not valid in text"
            )


def check_json(value: Any, what: str) -> None:
    """Raise ``InvalidQueryError`` if ``value`` is not JSON PostgreSQL can
    hold: text that is not storable, NaN or an infinity, a type JSON lacks."""
    pending = [value]
    while pending:  # iterative: a deep value must not exhaust the stack
        item = pending.pop()
        if isinstance(item, str):
            check_texts((item,), what)
        elif isinstance(item, bool | int) or item is None:
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidQueryError(f"`{what}` holds {item}, which JSON lacks")
        elif isinstance(item, Mapping):
            check_texts(map(str, item), what)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        else:
            raise InvalidQueryError(f"`{what}` holds a {type(item).__name__}")
