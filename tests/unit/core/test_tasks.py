from __future__ import annotations

from dataclasses import dataclass

from gql_history.core.tasks import LiveTasks


@dataclass
class _Task:
    tags: set[str]
    timeout_seconds: int = 60


def test_tasks_without_a_registry_know_no_tags() -> None:
    assert (LiveTasks().tags_of("a"), LiveTasks().names_with_tags(["x"])) == (None, [])


def test_tasks_give_sorted_tags_and_the_names_carrying_them() -> None:
    tasks = LiveTasks({"b": _Task({"y", "x"}), "a": _Task({"x"}), "c": _Task(set())})
    assert tasks.tags_of("b") == ["x", "y"]
    assert tasks.tags_of("missing") is None
    assert tasks.names_with_tags(["x"]) == ["a", "b"]
    assert tasks.names_with_tags(["z"]) == []


def test_tasks_give_each_registered_timeout_in_seconds() -> None:
    tasks = LiveTasks({"a": _Task(set(), 5), "b": _Task(set())})
    assert tasks.timeouts() == {"a": 5.0, "b": 60.0}
    assert LiveTasks().timeouts() == {}
