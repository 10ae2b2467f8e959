"""The demo's tasks, which make varied history: the demo runs them, tests
reuse them (also ``examples/tasks.py``).

No ``from __future__ import annotations`` here: aio-fluid reads each task's
params model from its live ``TaskRun[Params]`` annotation.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fluid.scheduler import TaskPriority, TaskRun, every, task
from pydantic import BaseModel, Field


class AddParams(BaseModel):
    a: int = 1
    b: int = 2


class ReportParams(BaseModel):
    user: str = "u1"
    region: str = "eu"
    fail: bool = False


class SlowParams(BaseModel):
    seconds: float = Field(default=1.0, ge=0, le=60)


class FanOutParams(BaseModel):
    children: int = Field(default=3, ge=0, le=20)


class TrafficParams(BaseModel):
    runs: int = Field(default=3, ge=0, le=50)


@task(schedule=every(timedelta(seconds=5)), priority=TaskPriority.high, tags=["ops"])
async def ping(context: TaskRun) -> None:
    """Check the system is alive, every few seconds."""


@task(priority=TaskPriority.low, tags=["math"])
async def add(context: TaskRun[AddParams]) -> None:
    """Add two numbers."""
    context.logger.info("sum is %d", context.params.a + context.params.b)


@task(schedule=every(timedelta(seconds=7)), tags=["reports", "billing"])
async def report(context: TaskRun[ReportParams]) -> None:
    """Build a report for a user; fails when asked to, or now and then."""
    if context.params.fail or random.random() < 0.3:
        raise ValueError(f"report for {context.params.user} has no data")


@task(schedule=every(timedelta(seconds=11)), timeout_seconds=30, tags=["reports"])
async def slow(context: TaskRun[SlowParams]) -> None:
    """Take its time."""
    await asyncio.sleep(context.params.seconds)


@task(timeout_seconds=1)
async def stuck(context: TaskRun[SlowParams]) -> None:
    """Sleep past its one-second timeout, so it fails with a TimeoutError."""
    await asyncio.sleep(context.params.seconds + 2)


@task
async def cancelled(context: TaskRun) -> None:
    """Abort itself."""
    context.abort("nothing to do")


@task(schedule=every(timedelta(seconds=13)), tags=["pipeline"])
async def fan_out(context: TaskRun[FanOutParams]) -> None:
    """Queue child runs of `add`, each recording this run as its parent."""
    for i in range(context.params.children):
        await context.queue("add", a=i, b=i * 2)


@task(max_concurrency=1, tags=["pipeline"])
async def exclusive(context: TaskRun[SlowParams]) -> None:
    """Run one at a time; a second concurrent run is rate limited."""
    await asyncio.sleep(context.params.seconds)


@task(schedule=every(timedelta(seconds=17)), tags=["skip_db"])
async def heartbeat(context: TaskRun) -> None:
    """Tagged skip_db, so the history never records it."""


async def _queue_report(context: TaskRun) -> None:
    user, region = random.choice(("u1", "u2", "u3")), random.choice(("eu", "us"))
    await context.queue("report", user=user, region=region, fail=random.random() < 0.2)


async def _queue_add(context: TaskRun) -> None:
    priority = random.choice(list(TaskPriority))
    await context.queue("add", priority=priority, a=random.randint(0, 99), b=7)


async def _queue_slow(context: TaskRun) -> None:
    await context.queue("slow", seconds=round(random.uniform(0.5, 3.0), 1))


async def _queue_exclusive(context: TaskRun) -> None:
    for _ in range(2):  # the second is rate limited while the first runs
        await context.queue("exclusive", seconds=1.0)


async def _queue_stuck(context: TaskRun) -> None:
    await context.queue("stuck", seconds=0.5)


async def _queue_cancelled(context: TaskRun) -> None:
    await context.queue("cancelled")


async def _queue_fan_out(context: TaskRun) -> None:
    await context.queue("fan_out", priority=TaskPriority.high, children=2)


#: What ``traffic`` queues, and how often relative to the rest.
_TRAFFIC: tuple[tuple[Callable[[TaskRun], Awaitable[None]], int], ...] = (
    (_queue_report, 4),
    (_queue_add, 3),
    (_queue_slow, 1),
    (_queue_exclusive, 1),
    (_queue_stuck, 1),
    (_queue_cancelled, 1),
    (_queue_fan_out, 1),
)


@task(schedule=every(timedelta(seconds=4)), priority=TaskPriority.low, tags=["demo"])
async def traffic(context: TaskRun[TrafficParams]) -> None:
    """Queue a random mix of runs, as an application's users would: varied
    params and priorities, failures, timeouts, aborts and rate limits."""
    queuers, weights = zip(*_TRAFFIC, strict=True)
    for queue in random.choices(queuers, weights=weights, k=context.params.runs):
        await queue(context)
