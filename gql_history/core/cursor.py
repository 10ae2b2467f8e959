"""Opaque, integrity-checked keyset cursors.

A cursor holds the keyset position ``(key, id)`` (the key being the run's
``queued``, ``start``, ``end`` or duration, by order), the order it belongs to
and, for the REST route, the query it continues. It is signed with a keyed
hash so an altered or forged cursor is rejected instead of silently paging
somewhere else.

The hash is HMAC-SHA256 (truncated) over the cursor's JSON body, written as
PostgreSQL's ``to_json`` writes it (non-ASCII text as is): the GraphQL reads
compiled to SQL compute the same cursors inside the statement, with the key's
inner and outer pads (``CursorCodec.pads``) as parameters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import InvalidCursorError
from .text import storable

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Bytes of the signature kept in a cursor: tamper-evident, yet short.
SIGNATURE_BYTES = 12
#: SHA-256's block size, the length of an HMAC key pad.
_BLOCK_BYTES = 64
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Position:
    """A row's place in a keyset order ``(key, id)``."""

    key: datetime | timedelta | None
    """The run's value of the order's key: a time, a duration, or None for a
    run without one (not started, not ended)."""
    id: str


@dataclass(frozen=True, slots=True)
class CursorCodec:
    """Encodes and decodes cursors signed with ``secret``."""

    secret: bytes

    @classmethod
    def from_secret(cls, secret: str) -> CursorCodec:
        """A codec keyed by ``secret`` of any length."""
        return cls(hashlib.sha256(secret.encode()).digest())

    def encode(self, order: str, position: Position, extra: Any = None) -> str:
        """A cursor for ``position`` in ``order``, carrying ``extra`` if given."""
        body: list[Any] = [order, _encode_key(position.key), position.id]
        if extra is not None:
            body.append(extra)
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return _b64encode(self._sign(payload) + payload)

    def decode(self, cursor: str, order: str) -> tuple[Position, Any]:
        """The position and extra data of ``cursor``, which must be for ``order``."""
        cursor_order, position, extra = self.decode_any(cursor)
        if cursor_order != order:
            raise InvalidCursorError(
                f"this cursor belongs to the {cursor_order} order, not {order}"
            )
        return position, extra

    def decode_any(self, cursor: str) -> tuple[str, Position, Any]:
        """The order, position and extra data of ``cursor``, whatever its order."""
        try:
            raw = _b64decode(cursor)
            signature, payload = raw[:SIGNATURE_BYTES], raw[SIGNATURE_BYTES:]
            if not hmac.compare_digest(signature, self._sign(payload)):
                raise ValueError("bad signature")
            cursor_order, key, run_id, *rest = json.loads(payload)
            if not isinstance(run_id, str) or not storable(run_id):
                raise ValueError("bad body")
            position = Position(_decode_key(key), run_id)
            if not isinstance(cursor_order, str) or len(rest) > 1:
                raise ValueError("bad body")
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidCursorError(
                "invalid cursor: pass a cursor exactly as a previous page returned it"
            ) from exc
        return cursor_order, position, rest[0] if rest else None

    def pads(self) -> tuple[bytes, bytes]:
        """The key's inner and outer HMAC pads: ``sha256(outer + sha256(inner
        + payload))`` is the signature's HMAC, in SQL as in Python."""
        key = self.secret.ljust(_BLOCK_BYTES, b"\0")
        return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)

    def _sign(self, payload: bytes) -> bytes:
        digest = hmac.new(self.secret, payload, hashlib.sha256).digest()
        return digest[:SIGNATURE_BYTES]


def _encode_key(key: datetime | timedelta | None) -> Any:
    """A time as microseconds since the epoch, a duration as a list of its
    microseconds, None as null: the key's kind is in the cursor itself."""
    if key is None:
        return None
    if isinstance(key, timedelta):
        return [key // _MICROSECOND]
    return (key - _EPOCH) // _MICROSECOND


def _decode_key(key: Any) -> datetime | timedelta | None:
    if key is None:
        return None
    if isinstance(key, list) and len(key) == 1:
        return timedelta(microseconds=int(key[0]))
    if isinstance(key, int):
        return _EPOCH + timedelta(microseconds=key)
    raise ValueError("bad key")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
