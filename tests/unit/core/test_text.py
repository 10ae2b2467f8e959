from __future__ import annotations

import pytest

from gql_history.core.filters import RunFilter
from gql_history.core.limits import QueryLimits
from gql_history.core.text import check_json, storable
from gql_history.errors import InvalidQueryError


@pytest.mark.parametrize(
    ("value", "expected"),
    [("run-1", True), ("é ✓", True), ("", True), ("a\x00", False), ("\ud800", False)],
)
def test_text_storable_rejects_nul_and_lone_surrogates(
    value: str, expected: bool
) -> None:
    assert storable(value) is expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": float("nan")}, "`params` holds nan, which JSON lacks"),
        ({"a": [1, {"b": float("inf")}]}, "`params` holds inf, which JSON lacks"),
        ({"a\x00": 1}, "`params` holds 'a\\x00': NUL characters and lone"),
        ({"a": {"b": ["\ud800"]}}, "`params` holds '\\ud800': NUL characters"),
        ({"a": {1, 2}}, "`params` holds a set"),
    ],
)
def test_text_check_json_names_what_postgres_cannot_hold(
    value: object, message: str
) -> None:
    with pytest.raises(InvalidQueryError) as raised:
        check_json(value, "params")
    assert str(raised.value).startswith(message)


def test_text_check_json_walks_deep_values_without_recursion() -> None:
    deep: object = "ok"
    for _ in range(50_000):
        deep = [deep]
    check_json({"a": deep, "b": 1.5, "c": None, "d": True}, "params")


def test_text_run_filter_refuses_text_postgres_cannot_hold() -> None:
    with pytest.raises(InvalidQueryError, match="`tags` holds"):
        RunFilter(tags=["ok", "\x00"])
    with pytest.raises(InvalidQueryError, match="`parentRunId/rootRunId` holds"):
        RunFilter(root_run_id="\ud800")


def test_text_filter_limits_count_values_and_conditions() -> None:
    limits = QueryLimits(max_filter_values=3, max_filter_size=4)
    leaf = RunFilter(task=["a"])
    assert RunFilter(any_of=[leaf, leaf], tags=["t"]).size() == 3
    limits.check_filter(RunFilter(any_of=[leaf, leaf, leaf]))
    with pytest.raises(InvalidQueryError, match="holds 4 values, more than 3"):
        limits.check_filter(RunFilter(negate=RunFilter(task=["a", "b", "c", "d"])))
    with pytest.raises(InvalidQueryError, match="holds 5 conditions, more than 4"):
        limits.check_filter(RunFilter(all_of=[RunFilter(all_of=[leaf, leaf]), leaf]))
