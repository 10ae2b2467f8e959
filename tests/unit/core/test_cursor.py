from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from gql_history.core.cursor import SIGNATURE_BYTES, CursorCodec, Position
from gql_history.errors import InvalidCursorError

AT = Position(datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC), "run-1")


def test_cursor_round_trips_its_position_and_extra() -> None:
    codec = CursorCodec.from_secret("s")
    cursor = codec.encode("QUEUED_DESC", AT, {"task": ["a"]})
    assert codec.decode(cursor, "QUEUED_DESC") == (AT, {"task": ["a"]})


def test_cursor_of_another_secret_is_refused() -> None:
    cursor = CursorCodec.from_secret("s").encode("QUEUED_DESC", AT)
    with pytest.raises(InvalidCursorError, match="invalid cursor"):
        CursorCodec.from_secret("other").decode(cursor, "QUEUED_DESC")


def test_cursor_of_another_order_is_refused() -> None:
    codec = CursorCodec.from_secret("s")
    with pytest.raises(InvalidCursorError, match="QUEUED_DESC order, not QUEUED_ASC"):
        codec.decode(codec.encode("QUEUED_DESC", AT), "QUEUED_ASC")


@pytest.mark.parametrize("cursor", ["", "x", "!!!!", "AAAAAAAAAAAAAAAAAAAAAAAA"])
def test_cursor_malformed_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        CursorCodec.from_secret("s").decode(cursor, "QUEUED_DESC")


@pytest.mark.parametrize(
    "key",
    [
        timedelta(days=1, microseconds=7),
        timedelta(0),
        None,
        datetime.min.replace(tzinfo=UTC),
    ],
)
def test_cursor_round_trips_durations_and_missing_keys(key: object) -> None:
    codec = CursorCodec.from_secret("s")
    position = Position(key, "run-2")  # type: ignore[arg-type]
    assert codec.decode(codec.encode("DURATION_ASC", position), "DURATION_ASC") == (
        position,
        None,
    )


def test_cursor_decode_any_tells_its_order() -> None:
    codec = CursorCodec.from_secret("s")
    assert codec.decode_any(codec.encode("END_DESC", AT, [1])) == ("END_DESC", AT, [1])


def test_cursor_pads_give_the_signature_hmac() -> None:
    """``sha256(outer + sha256(inner + body))``, as the compiled reads sign in
    SQL, is the cursor's signature: the first bytes of its HMAC-SHA256."""
    codec = CursorCodec.from_secret("s3cret")
    cursor = codec.encode("QUEUED_DESC", Position(None, "rún-1"))
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    signature, body = raw[:SIGNATURE_BYTES], raw[SIGNATURE_BYTES:]
    assert body == '["QUEUED_DESC",null,"rún-1"]'.encode()
    inner, outer = codec.pads()
    digest = hashlib.sha256(outer + hashlib.sha256(inner + body).digest()).digest()
    assert digest[:SIGNATURE_BYTES] == signature
