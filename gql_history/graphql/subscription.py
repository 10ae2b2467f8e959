"""The Subscription root: live run updates over ``graphql-transport-ws``.

No ``from __future__ import annotations``: Strawberry reads live annotations.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from .context import HistoryContext, history_context
from .inputs import TaskRunFilter, given
from .types import TaskRun

if TYPE_CHECKING:
    from ..live.subscription import LiveSubscription


@strawberry.type(description="Live task-run history.")
class Subscription:
    @strawberry.subscription(
        description=(
            "Each committed change of a run matching `filter`, the run as it "
            "is once changed (a run changing again before it is sent is sent "
            "once), in the order the changes became visible (those visible "
            "together by transaction, then run id), each with a `resumeToken`. "
            "With `after` set to the `resumeToken` of the last run received, "
            "on any server of the same database, first every matching change "
            "that run's stream had not sent yet, then the live changes: no "
            "change missed, none sent twice. A subscriber that falls too far "
            "behind, or loses the stream, gets an error coded "
            "SUBSCRIBER_TOO_SLOW or LIVE_UPDATES_INTERRUPTED: subscribe again "
            "with `after`."
        )
    )
    async def run_updates(
        self,
        info: strawberry.Info,
        filter: Annotated[
            TaskRunFilter | None,
            strawberry.argument(
                description="Which runs, as for `runs`; all of them when null."
            ),
        ] = strawberry.UNSET,
        after: Annotated[
            str | None,
            strawberry.argument(
                description=(
                    "Resume after the run that carried this `resumeToken`: "
                    "replay first the matching changes it had not sent."
                )
            ),
        ] = strawberry.UNSET,
        since: Annotated[
            datetime | None,
            strawberry.argument(
                description=(
                    "Replay first the matching runs changed after this time "
                    "(the `updated` of the last run received): never misses "
                    "one, but may send again runs changed shortly before it. "
                    "`after` resumes exactly."
                )
            ),
        ] = strawberry.UNSET,
    ) -> AsyncIterator[TaskRun]:
        context = history_context(info)
        service = context.service
        runs = context.run_filter(filter)
        context.open_subscription(service.limits.max_subscriptions)
        try:
            subscription = await service.subscribe(
                runs, after=given(after), since=given(since)
            )
        except BaseException:
            context.close_subscription()
            raise
        return _RunUpdates(subscription, context)


class _RunUpdates:
    """A subscription's runs as ``TaskRun``s; closing it (even unstarted)
    frees the subscription and the connection's slot."""

    def __init__(
        self, subscription: "LiveSubscription", context: HistoryContext
    ) -> None:
        self._subscription = subscription
        self._runs = subscription.updates()
        self._context = context
        self._open = True

    def __aiter__(self) -> "_RunUpdates":
        return self

    async def __anext__(self) -> TaskRun:
        # A replay sends runs back to back, never waiting on I/O: yielding to
        # the loop first lets it notice a client gone, rather than write on
        # (uvicorn warns of every write after the connection was lost).
        await asyncio.sleep(0)
        try:
            update = await anext(self._runs)
        except BaseException:
            await self.aclose()
            raise
        run = TaskRun.from_record(update.run)
        run.resume_token = update.resume_token
        return run

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._subscription.close()
            self._context.close_subscription()
            await self._runs.aclose()
