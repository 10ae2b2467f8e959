from __future__ import annotations

import asyncio
import gc
import socket

import pytest

from gql_history.cli.serve import listen, run_command


def test_serve_listens_on_tcp_so_connections_get_nodelay() -> None:
    listener = listen("127.0.0.1", 0)
    try:
        assert (listener.proto, listener.type) == (
            socket.IPPROTO_TCP,
            socket.SOCK_STREAM,
        )
    finally:
        listener.close()


async def _interrupted_mid_connect() -> None:
    """What a Ctrl-C during asyncpg's connect leaves: a future that a callback
    of the closing socket fails after the command has stopped."""
    loop = asyncio.get_running_loop()
    abandoned = loop.create_future()
    loop.call_soon(abandoned.set_exception, ConnectionError("connection_lost"))
    raise KeyboardInterrupt


def _unretrieved_complaints(caplog: pytest.LogCaptureFixture) -> list[str]:
    gc.collect()
    return [r.msg.splitlines()[0] for r in caplog.records if r.name == "asyncio"]


def test_run_command_interrupted_leaves_no_unretrieved_future_noise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_command(_interrupted_mid_connect())
    assert _unretrieved_complaints(caplog) == []


def test_run_command_still_reports_unretrieved_futures_when_not_interrupted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def forgetful() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.create_future().set_exception, ConnectionError("lost"))

    run_command(forgetful())
    assert _unretrieved_complaints(caplog) == ["Future exception was never retrieved"]
