"""Hostile websocket clients against a real ``gql-history serve``, through
graphql-ws (and raw sockets) under Node: one subscriber's mistake ends its
own subscription alone, and none leaves a traceback in the server's log."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import timedelta
from typing import Any

import pytest

from examples.clients.generate import ToolUnavailableError
from tests.e2e.conftest import Served
from tests.factories import T0, run_record
from tests.node import node_clients, run_node, start_node

UPDATES = """subscription($f: TaskRunFilter, $since: DateTime) {
  runUpdates(filter: $f, since: $since) { runId }
}"""
BEFORE = (T0 - timedelta(minutes=1)).isoformat()


@pytest.fixture(scope="module", autouse=True)
def node() -> str:
    try:
        return node_clients()
    except ToolUnavailableError as exc:
        pytest.skip(str(exc))


def subscribe(served: Served, variables: dict[str, Any], count: int) -> list[Any]:
    return run_node(
        "ws.mjs",
        "subscribe",
        served.websocket,
        UPDATES,
        json.dumps(variables),
        str(count),
    )


async def next_line(process: subprocess.Popen[str]) -> Any:
    assert process.stdout is not None
    async with asyncio.timeout(20):
        line = await asyncio.to_thread(process.stdout.readline)
    assert line, process.stderr.read() if process.stderr else ""
    return json.loads(line)


@pytest.mark.parametrize("text", ["\x00", "\ud800"])
def test_hostile_live_filter_text_is_bad_user_input(served: Served, text: str) -> None:
    messages = subscribe(served, {"f": {"task": [text]}}, 1)
    assert messages[0] == {"subscribed": True}
    [error] = messages[1]["error"]
    assert (error["message"], error["extensions"]["code"]) == (
        f"`task` holds {text!r}: NUL characters and lone surrogates are not "
        "valid in text",
        "BAD_USER_INPUT",
    )


async def test_hostile_bad_live_filter_leaves_other_subscribers_be(
    served: Served,
) -> None:
    store = served.plugin.store
    await store.upsert([run_record("w-live-0", name="live")])
    good = {"f": {"task": ["live"]}, "since": BEFORE}
    listener = start_node(
        "ws.mjs", "subscribe", served.websocket, UPDATES, json.dumps(good), "2"
    )
    try:
        assert await next_line(listener) == {"subscribed": True}
        assert await next_line(listener) == {
            "next": {"data": {"runUpdates": {"runId": "w-live-0"}}}
        }
        for bad in (
            {"task": ["\x00"]},
            {"params": {"a": "\x00"}},
            {"tags": ["\ud800"]},
        ):
            errors = await asyncio.to_thread(subscribe, served, {"f": bad}, 1)
            assert errors[1]["error"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        await store.upsert([run_record("w-live-1", name="live")])
        assert await next_line(listener) == {
            "next": {"data": {"runUpdates": {"runId": "w-live-1"}}}
        }
        async with asyncio.timeout(20):
            assert await asyncio.to_thread(listener.wait) == 0
    finally:
        listener.kill()
        listener.wait()
    resumed = await asyncio.to_thread(subscribe, served, good, 2)
    assert resumed[1:3] == [
        {"next": {"data": {"runUpdates": {"runId": "w-live-0"}}}},
        {"next": {"data": {"runUpdates": {"runId": "w-live-1"}}}},
    ]


def test_hostile_silent_socket_is_closed_after_the_init_timeout(served: Served) -> None:
    [closed] = run_node("ws.mjs", "silent", served.websocket)
    assert (closed["close"], closed["reason"]) == (
        4408,
        "Connection initialisation timeout",
    )
    assert 2.5 <= closed["seconds"] < 10


def test_hostile_message_over_the_limit_closes_the_socket(served: Served) -> None:
    [closed] = run_node("ws.mjs", "big", served.websocket, "1100000")
    assert (closed["close"], closed["reason"]) == (1009, "message over 1048576 bytes")


async def test_hostile_client_dropping_mid_stream_is_no_server_error(
    served: Served,
) -> None:
    runs = [run_record(f"w-bulk-{i:04}", name="bulk") for i in range(600)]
    await served.plugin.store.upsert(runs)
    replay = {"f": {"task": ["bulk"]}, "since": BEFORE}
    for _ in range(3):
        messages = await asyncio.to_thread(
            run_node,
            "ws.mjs",
            "drop",
            served.websocket,
            UPDATES,
            json.dumps(replay),
        )
        assert messages[1] == {
            "next": {"data": {"runUpdates": {"runId": "w-bulk-0000"}}}
        }
    await asyncio.sleep(0.5)  # whatever the server logs, it logs by now
    printed = served.output()
    assert "Traceback" not in printed, printed
    assert "socket.send() raised exception" not in printed, printed
