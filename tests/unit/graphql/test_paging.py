from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gql_history.core.cursor import CursorCodec, Position
from gql_history.core.paging import PageRequest, RunOrder
from gql_history.errors import InvalidQueryError
from gql_history.graphql.paging import page_request

CODEC = CursorCodec.from_secret("s")
AT = Position(datetime(2026, 1, 1, tzinfo=UTC), "r")
CURSOR = CODEC.encode(RunOrder.QUEUED_DESC, AT)


def request(**args: object) -> PageRequest:
    given: dict[str, object] = {"first": None, "after": None, "last": None}
    return page_request(
        order=RunOrder.QUEUED_DESC,
        **{**given, "before": None, **args},  # type: ignore[arg-type]
        cursors=CODEC,
        max_page_size=100,
    )


def test_paging_defaults_to_fifty_forward() -> None:
    assert request() == PageRequest(RunOrder.QUEUED_DESC, 50, None, False)


def test_paging_reads_backward_from_before() -> None:
    assert request(last=5, before=CURSOR) == PageRequest(
        RunOrder.QUEUED_DESC, 5, AT, True
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"first": 1, "last": 1}, "not both"),
        ({"last": 1, "after": CURSOR}, "`after` pages forward"),
        ({"first": 1, "before": CURSOR}, "`before` pages backward"),
        ({"first": 101}, "`first` must be between 0 and 100, not 101"),
        ({"last": -1}, "`last` must be between 0 and 100, not -1"),
    ],
)
def test_paging_refuses_contradictory_arguments(
    args: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        request(**args)
