from __future__ import annotations

import socket

from gql_history.cli.serve import listen


def test_serve_listens_on_tcp_so_connections_get_nodelay() -> None:
    listener = listen("127.0.0.1", 0)
    try:
        assert (listener.proto, listener.type) == (
            socket.IPPROTO_TCP,
            socket.SOCK_STREAM,
        )
    finally:
        listener.close()
