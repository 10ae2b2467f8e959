"""Exponential backoff between retries of something that keeps failing."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays doubling from ``initial`` to at most ``maximum`` seconds, until
    ``reset`` after a success."""

    initial: float = 0.1
    maximum: float = 5.0
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.initial

    def next(self) -> float:
        """The delay to wait now; the one after it is twice as long."""
        delay = self.current
        self.current = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        """Start again from ``initial``."""
        self.current = self.initial
