"""Resuming live run updates, over a real websocket against uvicorn: from a
``resumeToken`` exactly, from a time (``since``) without a gap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from gql_history import HistoryService
from gql_history.live.positions import StreamPosition
from tests.factories import T0, lifecycle, run_record
from tests.ws import GraphQLWS, serving, updates_until

UPDATES = """
subscription Updates($filter: TaskRunFilter, $after: String, $since: DateTime) {
  runUpdates(filter: $filter, after: $after, since: $since) {
    runId state updated resumeToken
  }
}
"""


@pytest.fixture(scope="module")
async def url(history_app: FastAPI) -> AsyncIterator[str]:
    async with serving(history_app) as url:
        yield url


async def subscribed(history: HistoryService, count: int) -> None:
    async with asyncio.timeout(10):
        while len(history.live.subscriptions) != count:
            await asyncio.sleep(0.01)


async def token_after(
    url: str, history: HistoryService, task: str, write: Callable[[], Any]
) -> dict[str, Any]:
    """The first run of ``task`` a subscriber gets once ``write()`` ran."""
    async with GraphQLWS.connect(url) as ws:
        await ws.subscribe(UPDATES, filter={"task": [task]})
        await subscribed(history, 1)
        await write()
        run: dict[str, Any] = (await ws.next_data())["runUpdates"]
    await subscribed(history, 0)
    return run


@pytest.mark.parametrize("resume", ["after", "since"])
async def test_run_updates_resume_gets_a_change_committed_after_a_later_one(
    url: str, history: HistoryService, resume: str
) -> None:
    """The loss of resuming from ``updated``: A writes first, B writes and
    commits, the client gets B and goes, A commits, the client resumes from
    B. A comes; from B's token, A alone; from B's time, maybe B again."""
    store, task = history.store, f"late-{resume}"
    async with store.engine.connect() as held, held.begin():
        await store.write(held, [run_record(f"{task}-a", name=task)])

        async def write_b() -> None:
            await store.upsert([run_record(f"{task}-b", name=task)])

        b = await token_after(url, history, task, write_b)
        await held.commit()
    async with GraphQLWS.connect(url) as ws:
        point = b["resumeToken"] if resume == "after" else b["updated"]
        await ws.subscribe(UPDATES, filter={"task": [task]}, **{resume: point})
        await store.upsert([run_record(f"{task}-end", name=task)])
        received = await updates_until(ws, lambda run: run["runId"].endswith("end"))
    ids = [run["runId"] for run in received]
    if resume == "after":
        assert ids == [f"{task}-a", f"{task}-end"]
    else:
        assert ids[0] == f"{task}-a" and ids[-1] == f"{task}-end"
        assert set(ids) <= {f"{task}-a", f"{task}-b", f"{task}-end"}


async def test_run_updates_resume_after_a_token_without_gap_or_duplicate(
    url: str, history: HistoryService
) -> None:
    """The replay and the stream meet exactly: a change written before the
    replay but committed after it comes once, as does every change made while
    resuming, however they interleave; nothing before the token comes."""
    store = history.store

    async def write_before() -> None:
        await store.upsert([run_record("s-before", name="seam", queued=T0)])

    before = await token_after(url, history, "seam", write_before)
    await store.upsert(lifecycle("s-replayed", name="seam", queued=T0)[:2])
    writing, written = True, 0

    async def write() -> None:
        """Runs changing all through the seam, three versions each."""
        nonlocal written
        for i in range(10_000):
            if not writing:
                return
            for record in lifecycle(f"s-busy-{i}", name="seam", queued=T0):
                await store.upsert([record])
            written += 1

    writer = asyncio.create_task(write())
    async with store.engine.connect() as held, held.begin():
        await store.write(held, [run_record("s-held", name="seam", queued=T0)])
        async with GraphQLWS.connect(url) as ws:
            await ws.subscribe(
                UPDATES, filter={"task": ["seam"]}, after=before["resumeToken"]
            )
            await subscribed(history, 1)
            start = written
            async with asyncio.timeout(10):  # let the writer write past the seam
                while written < start + 4:
                    await asyncio.sleep(0.01)
            await held.commit()
            await store.upsert(lifecycle("s-replayed", name="seam", queued=T0)[2:])
            writing = False
            await writer
            await store.upsert([run_record("s-last", name="seam")])
            received = await updates_until(ws, lambda r: r["runId"] == "s-last")
    versions = [(run["runId"], run["state"], run["updated"]) for run in received]
    assert len(versions) == len(set(versions)), "a version came twice"
    async with store.engine.connect() as conn:
        final = (
            await conn.execute(
                sa.text(
                    f'SELECT id, state, updated FROM "{store.table.name}" '
                    "WHERE name = 'seam' AND id <> 's-before'"
                )
            )
        ).all()
    last_received = {run["runId"]: run for run in received}
    assert {
        run_id: (run["state"], datetime.fromisoformat(run["updated"]))
        for run_id, run in last_received.items()
    } == {row.id: (row.state.upper(), row.updated) for row in final}
    assert len([run for run in final if run.id.startswith("s-busy-")]) > 3


async def test_run_updates_resume_after_the_last_run_received(
    url: str, history: HistoryService
) -> None:
    """Runs come in the order written, one write's runs too: resuming after
    the last one received, even in the middle of a write, gets exactly the
    rest, on and on."""
    resume = {"task": ["resume"]}
    first = [run_record(f"r-{i}", name="resume") for i in range(5)]
    second = [run_record(f"r-{i}", name="resume") for i in range(5, 8)]
    async with GraphQLWS.connect(url) as ws:
        await ws.subscribe(UPDATES, filter=resume)
        await subscribed(history, 1)
        await history.store.upsert(first[::-1])
        received = [(await ws.next_data())["runUpdates"] for _ in range(2)]
    await subscribed(history, 0)
    await history.store.upsert(second)
    for count in (1, 3, 2):  # resumed three times, in the middle of writes
        async with GraphQLWS.connect(url) as ws:
            after = received[-1]["resumeToken"]
            await ws.subscribe(UPDATES, filter=resume, after=after)
            received += [(await ws.next_data())["runUpdates"] for _ in range(count)]
        await subscribed(history, 0)
    async with GraphQLWS.connect(url) as ws:
        await ws.subscribe(UPDATES, filter=resume, after=received[-1]["resumeToken"])
        await history.store.upsert([run_record("r-end", name="resume")])
        received += await updates_until(ws, lambda run: run["runId"] == "r-end")
    assert [run["runId"] for run in received] == [
        *(f"r-{i}" for i in range(8)),
        "r-end",
    ]
    updated = [datetime.fromisoformat(run["updated"]) for run in received]
    assert updated == sorted(updated)
    assert updated[1] - updated[0] == timedelta(microseconds=1)


async def test_run_updates_refuses_a_bad_resume_token(
    url: str, history: HistoryService
) -> None:
    snapshot = await history.live.reader.snapshot()
    future = StreamPosition.below(snapshot.xmax + 10)
    cases = {
        "not a token": (
            {"after": "not-a-token"},
            "`after` is not a resume token of runUpdates: pass the "
            "`resumeToken` of a run it sent",
        ),
        "both": (
            {"after": StreamPosition(snapshot).token(), "since": T0.isoformat()},
            "give `after` or `since`, not both",
        ),
        "another database's": (
            {"after": future.token()},
            "`after` is not a resume token of this database's runUpdates",
        ),
    }
    async with GraphQLWS.connect(url) as ws:
        for variables, message in cases.values():
            operation = await ws.subscribe(UPDATES, **variables)
            error = await ws.receive()
            assert (error["id"], error["type"]) == (operation, "error")
            assert [(e["message"], e["extensions"]) for e in error["payload"]] == [
                (message, {"code": "BAD_USER_INPUT"})
            ]
    await subscribed(history, 0)
