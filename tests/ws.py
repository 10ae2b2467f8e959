"""A ``graphql-transport-ws`` client over a real websocket, and uvicorn
serving an app in this process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

PROTOCOL = "graphql-transport-ws"
RECEIVE_TIMEOUT = 10.0


@asynccontextmanager
async def serving(app: Any, *, send_buffer: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1; yield the
    websocket URL of its GraphQL endpoint. ``send_buffer`` sets the kernel's
    send buffer of its connections, in bytes (a small one makes a stalled
    client back the server up quickly)."""
    listener = socket.socket()
    if send_buffer is not None:  # accepted connections inherit it
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{port}/tasks-graphql"
    finally:
        server.should_exit = True
        await task
        listener.close()


def port_of(url: str) -> int:
    """The port of a ``ws://127.0.0.1:port/...`` URL."""
    return int(url.split(":")[2].split("/")[0])


class GraphQLWS:
    """One connection speaking ``graphql-transport-ws``, acknowledged."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket
        self._ids = itertools.count(1)

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> AsyncIterator[GraphQLWS]:
        """Connect to ``url`` and initialise the connection; ``options`` go
        to ``websockets.connect`` (say, ``max_queue``)."""
        async with connect(
            url,
            subprotocols=[Subprotocol(PROTOCOL)],
            additional_headers=headers,
            open_timeout=10,
            **options,
        ) as websocket:
            client = cls(websocket)
            await client.send({"type": "connection_init"})
            assert await client.receive() == {"type": "connection_ack"}
            yield client

    async def send(self, message: dict[str, Any]) -> None:
        await self.websocket.send(json.dumps(message))

    async def receive(self, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        """The next message, within ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            message: dict[str, Any] = json.loads(await self.websocket.recv())
        return message

    async def subscribe(self, query: str, **variables: Any) -> str:
        """Start an operation; return its id."""
        operation = str(next(self._ids))
        payload = {"query": query, "variables": variables}
        await self.send({"id": operation, "type": "subscribe", "payload": payload})
        return operation

    async def complete(self, operation: str) -> None:
        """Stop an operation."""
        await self.send({"id": operation, "type": "complete"})

    async def next_data(self, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        """The data of the next message, which must be a ``next`` without
        errors."""
        message = await self.receive(timeout)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data


async def updates_until(
    ws: GraphQLWS, last: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """The ``runUpdates`` received up to and including the first for which
    ``last`` holds."""
    runs = []
    while True:
        run = (await ws.next_data())["runUpdates"]
        runs.append(run)
        if last(run):
            return runs
