"""Opaque, integrity-checked keyset cursors.

A cursor holds the keyset position ``(queued, id)``, the order it belongs to
and, for the REST route, the query it continues. It is signed with a keyed
hash so an altered or forged cursor is rejected instead of silently paging
somewhere else.
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
_SIGNATURE_BYTES = 12


@dataclass(frozen=True, slots=True)
class Position:
    """A row's place in the keyset order ``(queued, id)``."""

    queued: datetime
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
        micros = (position.queued - _EPOCH) // timedelta(microseconds=1)
        body: list[Any] = [order, micros, position.id]
        if extra is not None:
            body.append(extra)
        payload = json.dumps(body, separators=(",", ":")).encode()
        return _b64encode(self._sign(payload) + payload)

    def decode(self, cursor: str, order: str) -> tuple[Position, Any]:
        """The position and extra data of ``cursor``, which must be for ``order``."""
        try:
            raw = _b64decode(cursor)
            signature, payload = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
            if not hmac.compare_digest(signature, self._sign(payload)):
                raise ValueError("bad signature")
            cursor_order, micros, run_id, *rest = json.loads(payload)
            queued = _EPOCH + timedelta(microseconds=int(micros))
            if not isinstance(run_id, str) or not storable(run_id) or len(rest) > 1:
                raise ValueError("bad body")
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidCursorError(
                "invalid cursor: pass a cursor exactly as a previous page returned it"
            ) from exc
        if cursor_order != order:
            raise InvalidCursorError(
                f"this cursor belongs to the {cursor_order} order, not {order}"
            )
        return Position(queued, run_id), rest[0] if rest else None

    def _sign(self, payload: bytes) -> bytes:
        return hashlib.blake2b(
            payload, key=self.secret, digest_size=_SIGNATURE_BYTES
        ).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
