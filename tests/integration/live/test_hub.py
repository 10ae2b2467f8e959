"""Live run updates over a real websocket, against uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException
from fluid.scheduler import TaskState
from starlette.requests import HTTPConnection
from websockets.exceptions import InvalidStatus

from gql_history import HistoryService, RunFilter, create_app
from gql_history.errors import LiveUpdatesInterruptedError
from gql_history.graphql.context import HistoryContext
from gql_history.graphql.execution import BulkExecutionContext
from gql_history.live.subscription import LiveSubscription
from gql_history.schema import build_schema
from tests.conftest import wait_for
from tests.factories import beat, lifecycle, run_record
from tests.gql import GraphQL
from tests.ws import GraphQLWS, port_of, serving, updates_until

TOKEN = {"authorization": "Bearer live"}
QUEUE_SIZE = 20
MAX_SUBSCRIPTIONS = 3
MAX_REPLAY = 200
UPDATES = """
subscription Updates($filter: TaskRunFilter, $since: DateTime) {
  runUpdates(filter: $filter, since: $since) { runId state updated }
}
"""


def auth(connection: HTTPConnection) -> None:
    """Lets in requests and websockets carrying the test token."""
    if connection.headers.get("authorization") != TOKEN["authorization"]:
        raise HTTPException(status_code=401, detail="Not authenticated")


@pytest.fixture(scope="module")
async def live_app(database_url: str, fresh_table: str) -> AsyncIterator[FastAPI]:
    app = create_app(
        database_url,
        table_name=fresh_table,
        dependencies=[Depends(auth)],
        live_queue_size=QUEUE_SIZE,
        max_subscriptions=MAX_SUBSCRIPTIONS,
        max_replay=MAX_REPLAY,
    )
    await app.state.history_service.store.create_tables()
    yield app
    await app.state.history_service.close()


@pytest.fixture(scope="module")
def live(live_app: FastAPI) -> HistoryService:
    service: HistoryService = live_app.state.history_service
    return service


@pytest.fixture(scope="module")
async def url(live_app: FastAPI) -> AsyncIterator[str]:
    async with serving(live_app) as url:
        yield url


@pytest.fixture(scope="module")
async def graphql(live_app: FastAPI) -> AsyncIterator[GraphQL]:
    transport = httpx.ASGITransport(live_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=TOKEN
    ) as client:
        yield GraphQL(client)


async def subscribed(live: HistoryService, count: int) -> list[LiveSubscription]:
    """The plugin's subscriptions, once there are ``count`` of them."""
    async with asyncio.timeout(10):
        while len(live.live.subscriptions) != count:
            await asyncio.sleep(0.01)
    return list(live.live.subscriptions)


async def db_now(live: HistoryService) -> datetime:
    async with live.store.engine.connect() as conn:
        now: datetime = (await conn.execute(sa.text("SELECT now()"))).scalar_one()
    return now


async def test_run_updates_sends_the_changes_of_matching_runs_only(
    url: str, live: HistoryService, graphql: GraphQL
) -> None:
    run_filter = {
        "or": [{"task": ["report"]}, {"params": {"user": "u1"}}],
        "not": {"state": ["QUEUED"]},
        "tags": ["billing", "math"],
    }
    done = {"state": TaskState.success}
    records = [
        run_record("f-report", name="report", tags=["billing"], **done),
        run_record("f-queued", name="report", tags=["billing"]),
        run_record("f-u1", params={"user": "u1", "n": 1}, tags=["math"], **done),
        run_record("f-u2", params={"user": "u2"}, tags=["math"], **done),
        run_record("f-ops", name="report", tags=["ops"], **done),
        run_record("f-moving", params={"user": "u1"}, tags=["math"]),
    ]
    async with GraphQLWS.connect(url, headers=TOKEN) as ws:
        await ws.subscribe(UPDATES, filter=run_filter)
        await subscribed(live, 1)
        await live.store.upsert(records)
        running = {"state": TaskState.running, "tags": ["math"]}
        await live.store.upsert(
            [run_record("f-moving", params={"user": "u1"}, **running)]
        )
        await live.store.upsert(
            [run_record("f-end", name="report", tags=["billing"], **done)]
        )
        received = await updates_until(ws, lambda run: run["runId"] == "f-end")
    expected = await graphql.data(
        "query($filter: TaskRunFilter) { runs(filter: $filter, orderBy: QUEUED_ASC)"
        " { edges { node { runId state } } } }",
        filter=run_filter,
    )
    assert sorted((run["runId"], run["state"]) for run in received) == sorted(
        (edge["node"]["runId"], edge["node"]["state"])
        for edge in expected["runs"]["edges"]
    )
    assert sorted((run["runId"], run["state"]) for run in received) == [
        ("f-end", "SUCCESS"),
        ("f-moving", "RUNNING"),
        ("f-report", "SUCCESS"),
        ("f-u1", "SUCCESS"),
    ]


async def test_live_subscription_sends_each_version_once_across_the_seam(
    live: HistoryService,
) -> None:
    """Deterministically, both ways a version could come twice: a change the
    replay read whose notification arrives after the subscription started,
    and a replayed run changed again before its replay page is read."""
    store, hub = live.store, live.live
    seam = RunFilter(task=["seam"])
    since = await db_now(live)
    # hold notifications back: a backend delivers them once it is idle
    listening = await hub.subscribe(RunFilter(task=["none"]))
    listener = hub.listener
    busy = asyncio.create_task(listener.connection.execute("SELECT pg_sleep(0.3)"))
    await until_active(live, listener.backend_pid)
    await store.upsert([run_record("seam-notified", name="seam")])
    await store.upsert([run_record("seam-superseded", name="seam")])
    subscription = await hub.subscribe(seam, since=since)
    await store.upsert(
        [run_record("seam-superseded", name="seam", state=TaskState.running)]
    )
    await store.upsert([run_record("seam-live", name="seam")])
    await store.upsert([run_record("seam-end", name="seam")])
    received = []
    async with asyncio.timeout(10), aclosing(subscription.runs()) as runs:
        async for row in runs:
            received.append((row.id, row.state))
            if row.id == "seam-end":
                break
    await busy
    listening.close()
    assert received == [
        ("seam-notified", TaskState.queued),
        ("seam-superseded", TaskState.running),
        ("seam-live", TaskState.queued),
        ("seam-end", TaskState.queued),
    ]


async def test_live_subscription_sends_runs_in_the_order_written(
    live: HistoryService,
) -> None:
    """In commit order, though read back together; a run changing again while
    it waits moves to the place of its latest change."""
    store, hub = live.store, live.live
    subscription = await hub.subscribe(RunFilter(task=["order"]))

    async def queued(count: int) -> None:
        async with asyncio.timeout(5):
            while subscription.queued != count:
                await asyncio.sleep(0.01)

    listener = hub.listener
    busy = asyncio.create_task(listener.connection.execute("SELECT pg_sleep(0.2)"))
    await until_active(live, listener.backend_pid)
    await store.upsert([run_record("o-z", name="order")])
    await store.upsert([run_record("o-a", name="order")])
    await busy  # both notifications arrive, and are read back, together
    await queued(2)
    async with aclosing(subscription.runs()) as runs:
        first = [(row.id, row.state) for row in [await anext(runs), await anext(runs)]]
        await store.upsert([run_record("o-b", name="order")])
        await queued(1)
        await store.upsert([run_record("o-c", name="order")])
        await queued(2)
        await store.upsert([run_record("o-b", name="order", state=TaskState.running)])
        await store.upsert([run_record("o-d", name="order")])
        await queued(3)
        then = [(row.id, row.state) for row in [await anext(runs) for _ in range(3)]]
    assert first + then == [
        ("o-z", TaskState.queued),
        ("o-a", TaskState.queued),
        ("o-c", TaskState.queued),
        ("o-b", TaskState.running),
        ("o-d", TaskState.queued),
    ]


async def test_run_updates_plan_their_fields_once_per_subscription(
    live: HistoryService,
) -> None:
    """The bulk execution context plans a selection once, however many events
    a subscription executes (a plan per event would grow without bound)."""
    schema = build_schema(live.limits)
    stream = await schema.subscribe(
        'subscription PlanOnce { runUpdates(filter: {task: ["plans"]})'
        " { runId error { type } } }",
        context_value=HistoryContext(live, cache=False),
    )
    async with aclosing(stream):
        first = asyncio.ensure_future(anext(stream))  # subscribes
        await subscribed(live, 1)
        await live.store.upsert(
            [run_record(f"plans-{i:02d}", name="plans") for i in range(QUEUE_SIZE)]
        )
        received = [await first]
        received += [await anext(stream) for _ in range(QUEUE_SIZE - 1)]
        executors = [
            o
            for o in gc.get_objects()
            if isinstance(o, BulkExecutionContext)
            and o.operation.name is not None
            and o.operation.name.value == "PlanOnce"
        ]
        assert executors
        for executor in executors:
            assert not executor._plans
            fields = _fields_of(executor.operation)
            planned = [
                key
                for key, ((_, nodes), _) in executor._plans_by_nodes.items()
                if {id(node) for node in nodes} <= fields
            ]
            assert len(planned) == 3  # a root, a TaskRun and a TaskRunError
    assert [result.data for result in received] == [
        {"runUpdates": {"runId": f"plans-{i:02d}", "error": None}}
        for i in range(QUEUE_SIZE)
    ]


def _fields_of(operation: Any) -> set[int]:
    """The ids of the field nodes of ``operation`` (which has no fragments)."""
    ids, pending = set(), list(operation.selection_set.selections)
    while pending:
        node = pending.pop()
        ids.add(id(node))
        if node.selection_set is not None:
            pending.extend(node.selection_set.selections)
    return ids


async def until_active(live: HistoryService, pid: int | None) -> None:
    """Wait until the backend ``pid`` runs a statement."""
    query = sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
    async with asyncio.timeout(5):
        while True:
            async with live.store.engine.connect() as conn:
                state = (await conn.execute(query, {"pid": pid})).scalar()
            if state == "active":
                return
            await asyncio.sleep(0.01)


async def test_run_updates_ends_a_stalled_subscriber_with_a_bounded_queue(
    live_app: FastAPI, live: HistoryService
) -> None:
    """A client that stops reading backs the server's sends up; its queue
    stays within bounds until the subscription ends."""
    pad = {"pad": "x" * 4000}
    async with serving(live_app, send_buffer=8192) as url:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        client.connect(("127.0.0.1", port_of(url)))
        async with GraphQLWS.connect(
            url, headers=TOKEN, sock=client, max_queue=1
        ) as ws:
            await ws.subscribe("subscription { runUpdates { runId params } }")
            [subscription] = await subscribed(live, 1)
            for batch in range(200):
                await live.store.upsert(
                    [run_record(f"stall-{batch}-{i}", params=pad) for i in range(10)]
                )
                assert subscription.queued <= QUEUE_SIZE
                if subscription.error is not None:
                    break
            await subscribed(live, 0)
            assert (subscription.peak, type(subscription.error).__name__) == (
                QUEUE_SIZE,
                "SubscriberTooSlowError",
            )
            # what was on its way comes, then the error and the end
            messages = []
            while not messages or messages[-1]["type"] != "complete":
                messages.append(await ws.receive())
    *sent, error, complete = messages
    assert {message["type"] for message in sent} == {"next"}
    assert 0 < len(sent) < batch * 10
    assert error["payload"]["errors"][0]["extensions"] == {
        "code": "SUBSCRIBER_TOO_SLOW"
    }
    assert complete == {"id": "1", "type": "complete"}


async def test_run_updates_limits_subscriptions_per_connection(
    url: str, live: HistoryService
) -> None:
    async with GraphQLWS.connect(url, headers=TOKEN) as ws:
        for _ in range(MAX_SUBSCRIPTIONS):
            await ws.subscribe(UPDATES)
        await subscribed(live, MAX_SUBSCRIPTIONS)
        refused = await ws.subscribe(UPDATES)
        message = await ws.receive()
        assert message == {
            "id": refused,
            "type": "error",
            "payload": [
                {
                    "message": f"a connection may hold at most {MAX_SUBSCRIPTIONS} "
                    "live subscriptions: complete one first, or open another "
                    "connection",
                    "locations": [{"line": 3, "column": 3}],
                    "path": ["runUpdates"],
                    "extensions": {"code": "BAD_USER_INPUT"},
                }
            ],
        }
        await ws.complete("1")
        await subscribed(live, MAX_SUBSCRIPTIONS - 1)
        await ws.subscribe(UPDATES)
        await subscribed(live, MAX_SUBSCRIPTIONS)
        async with GraphQLWS.connect(url, headers=TOKEN) as other:
            await other.subscribe(UPDATES)
            await subscribed(live, MAX_SUBSCRIPTIONS + 1)
    await subscribed(live, 0)


async def test_run_updates_needs_the_auth_dependency_on_the_websocket(
    url: str, live: HistoryService
) -> None:
    for headers in (None, {"authorization": "Bearer wrong"}):
        with pytest.raises(InvalidStatus) as refused:
            async with GraphQLWS.connect(url, headers=headers):
                pass
        response = refused.value.response
        assert (response.status_code, bytes(response.body)) == (
            401,
            b'{"detail":"Not authenticated"}',
        )
    async with GraphQLWS.connect(url, headers=TOKEN) as ws:
        await ws.subscribe(UPDATES, filter={"task": ["auth"]})
        await subscribed(live, 1)
        await live.store.upsert([run_record("auth-1", name="auth")])
        assert (await ws.next_data())["runUpdates"]["runId"] == "auth-1"


async def test_run_updates_ends_when_notifications_stop_and_resumes(
    url: str, live: HistoryService
) -> None:
    listener = live.live.listener
    async with GraphQLWS.connect(url, headers=TOKEN) as ws:
        await ws.subscribe(UPDATES, filter={"task": ["lost"]})
        await subscribed(live, 1)
        await live.store.upsert([run_record("lost-1", name="lost")])
        seen = (await ws.next_data())["runUpdates"]
        async with live.store.engine.connect() as conn:
            await conn.execute(
                sa.text("SELECT pg_terminate_backend(:pid)"),
                {"pid": listener.backend_pid},
            )
        message = await ws.receive()
        assert message["payload"]["errors"][0]["extensions"] == {
            "code": "LIVE_UPDATES_INTERRUPTED"
        }
        assert await ws.receive() == {"id": "1", "type": "complete"}
        # changed while nobody listened, then resumed from the last run seen
        await live.store.upsert(lifecycle("lost-1", name="lost")[1:])
        await ws.subscribe(UPDATES, filter={"task": ["lost"]}, since=seen["updated"])
        assert (await ws.next_data())["runUpdates"] | {"updated": None} == {
            "runId": "lost-1",
            "state": "SUCCESS",
            "updated": None,
        }
    assert listener.connections == 2


async def test_run_updates_refuses_plain_http_requests(graphql: GraphQL) -> None:
    response = await graphql.client.post("/tasks-graphql", json={"query": UPDATES})
    assert (response.status_code, response.json()) == (
        400,
        {
            "errors": [
                {
                    "message": "subscriptions are served over a websocket "
                    "(graphql-transport-ws protocol) on this endpoint, not as "
                    "plain requests",
                    "extensions": {"code": "BAD_USER_INPUT"},
                }
            ]
        },
    )


async def test_run_updates_refuses_a_replay_past_max_replay(
    url: str, live: HistoryService
) -> None:
    since = await db_now(live)
    await live.store.upsert(
        [run_record(f"many-{i}", name="many") for i in range(MAX_REPLAY + 1)]
    )
    async with GraphQLWS.connect(url, headers=TOKEN) as ws:
        await ws.subscribe(UPDATES, filter={"task": ["many"]}, since=since.isoformat())
        message = await ws.receive()
        later = (since + timedelta(days=1)).isoformat()
        await ws.subscribe(UPDATES, filter={"task": ["many"]}, since=later)
        await subscribed(live, 1)
    assert message["type"] == "error"
    assert [error["extensions"]["code"] for error in message["payload"]] == [
        "BAD_USER_INPUT"
    ]
    assert message["payload"][0]["message"].startswith(
        f"more than {MAX_REPLAY} matching runs changed since"
    )


async def test_live_filter_failing_in_sql_ends_its_subscription_alone(
    live: HistoryService,
) -> None:
    good = await live.subscribe(RunFilter(task=["isolated"]))
    # a condition PostgreSQL fails to evaluate, as no checked filter can be
    bad = LiveSubscription(live.live, sa.text("CAST(name AS integer) = 1"), "bad")
    live.live.subscriptions.add(bad)
    await live.store.upsert([run_record("iso-1", name="isolated")])
    async with aclosing(good.runs()) as runs, asyncio.timeout(10):
        assert (await anext(runs)).id == "iso-1"
    # the groups are read one at a time: the bad one may come second
    await wait_for(lambda: _resolved(bad.error))
    assert isinstance(bad.error, LiveUpdatesInterruptedError)
    assert bad not in live.live.subscriptions
    good.close()


async def _resolved(value: Any) -> Any:
    return value


async def test_live_subscription_streams_the_reapers_marks(
    live: HistoryService,
) -> None:
    subscription = await live.subscribe(RunFilter(task=["reaped"]))
    await beat(live.store, "gone", seconds_ago=60)
    running = run_record("reaped-1", name="reaped", state=TaskState.running)
    await live.store.upsert([replace(running, worker="gone")])
    async with aclosing(subscription.runs()) as runs, asyncio.timeout(10):
        assert (await anext(runs)).state == TaskState.running
        marked = await live.store.reap(
            reaper="me", grace=30, timeout_margin=0, timeouts={}
        )
        assert marked == 1
        assert (await anext(runs)).state == TaskState.interrupted
    subscription.close()
