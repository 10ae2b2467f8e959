"""Stream positions: what a resume token covers, as sets of changes."""

from __future__ import annotations

import itertools
import random

import pytest

from gql_history.db.notifications import Snapshot
from gql_history.live.positions import StreamPosition


def snapshot(text: str) -> Snapshot:
    return Snapshot.parse(text)


def covered(
    position: StreamPosition, keys: list[tuple[int, str]]
) -> set[tuple[int, str]]:
    return {key for key in keys if position.sent(*key)}


def test_stream_position_then_covers_exactly_the_changes_sent_so_far() -> None:
    """Random snapshots, random changes: after each change of a step, sent
    in key order, the position covers what came before and what was sent,
    and nothing else; its in-progress list comes from the snapshots."""
    rng = random.Random(14)
    for _ in range(300):
        xids = range(100, 140)
        running = set(rng.sample(list(xids), 12))
        lower_xmax = rng.randrange(110, 130)
        lower = Snapshot(
            xmin=min(running | {lower_xmax}),
            xmax=lower_xmax,
            in_progress=frozenset(x for x in running if x < lower_xmax),
        )
        ended = {x for x in running if rng.random() < 0.5}
        upper_xmax = rng.randrange(lower_xmax, 141)
        still = frozenset(x for x in running - ended if x < upper_xmax)
        still |= frozenset(
            x for x in range(lower_xmax, upper_xmax) if rng.random() < 0.2
        )
        upper = Snapshot(min(still | {upper_xmax}), upper_xmax, still)
        keys = [(x, run) for x in xids for run in "abc"]
        before = StreamPosition(lower)
        step = sorted(k for k in keys if upper.saw(k[0]) and not lower.saw(k[0]))
        seen = covered(before, keys)
        for index, key in enumerate(step):
            position = before.then(*key, upper)
            assert covered(position, keys) == seen | set(step[: index + 1])
            assert (
                position.snapshot.in_progress <= lower.in_progress | upper.in_progress
            )
            assert StreamPosition.parse(position.token()) == position


def test_stream_position_then_keeps_the_part_sent_of_a_later_transaction() -> None:
    """Resuming part-way through transaction 120 when 110 (running at the
    token's snapshot) has committed since: 110's runs come first, and the
    token after one of them still covers 120's runs sent before."""
    token = StreamPosition(snapshot("110:121:110,120"), ((120, "b"),))
    upper = snapshot("125:125:")
    keys = [(x, run) for x in (105, 110, 120, 122) for run in "abc"]
    position = token.then(110, "a", upper)
    assert covered(position, keys) == {
        *itertools.product([105], "abc"),
        (110, "a"),
        (120, "a"),
        (120, "b"),
    }
    assert position.then(120, "c", upper).then(122, "a", upper).partial == ((122, "a"),)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-token",
        StreamPosition(snapshot("10:12:11")).token()[:-3],
        StreamPosition(snapshot("10:12:11"), ((10, "run"),)).token(),  # covered twice
        StreamPosition(Snapshot(12, 10, frozenset())).token(),  # xmin past xmax
        StreamPosition(Snapshot(10, 12, frozenset({13}))).token(),  # running past xmax
        StreamPosition(snapshot("10:12:11"), ((11, ""),)).token(),
        StreamPosition(snapshot("10:12:11"), ((11, "x" * 256),)).token(),
        # more part-sent transactions than any server writes: each is SQL
        StreamPosition(
            Snapshot(10, 100, frozenset(range(10, 75))),
            tuple((xid, "r") for xid in range(10, 75)),
        ).token(),
    ],
)
def test_stream_position_parse_refuses_what_is_not_a_token(token: str) -> None:
    with pytest.raises(ValueError, match="not a resume token of runUpdates"):
        StreamPosition.parse(token)
