"""Live updates: the LISTEN connection, the hub fanning committed changes out
to this process's subscriptions, and the reads of what changed."""

from __future__ import annotations

from .hub import LiveUpdates
from .subscription import LiveSubscription, RunUpdate

__all__ = ["LiveSubscription", "LiveUpdates", "RunUpdate"]
