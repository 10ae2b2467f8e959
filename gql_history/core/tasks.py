"""The tasks registered with the attached task manager, where runs stored
without tags find theirs: the one place the history asks the live registry."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol


class TaggedTask(Protocol):
    """What the history needs of an aio-fluid ``Task``."""

    @property
    def tags(self) -> Collection[str]: ...


class LiveTasks:
    """The live task registry, empty until a task manager attaches one."""

    def __init__(self, registry: Mapping[str, Any] | None = None) -> None:
        self.registry: Mapping[str, Any] = registry or {}
        """Registered tasks by name (an aio-fluid ``TaskRegistry``)."""

    def tags_of(self, task_name: str) -> list[str] | None:
        """The sorted tags of a registered task; None for an unknown one."""
        task: TaggedTask | None = self.registry.get(task_name)
        return sorted(task.tags) if task is not None else None

    def names_with_tags(self, tags: Collection[str]) -> list[str]:
        """The sorted names of registered tasks carrying any of ``tags``."""
        wanted = set(tags)
        return sorted(
            name for name, task in self.registry.items() if wanted & set(task.tags)
        )

    def timeouts(self) -> dict[str, float]:
        """Each registered task's timeout in seconds (aio-fluid's
        ``timeout_seconds``): past it plus a margin, a running run is lost."""
        return {
            name: float(seconds)
            for name, task in self.registry.items()
            if isinstance(
                seconds := getattr(task, "timeout_seconds", None), int | float
            )
        }
