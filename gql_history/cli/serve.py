"""Serving an app with uvicorn from the command line.

The database and Redis are checked, and the port bound, before anything
starts, so a wrong URL or a busy port is one clear error rather than a
traceback in the middle of a server's startup log.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from ..core.names import DEFAULT_TABLE_NAME
from ..errors import HistoryError

#: Seconds a check waits for a server to answer.
CHECK_TIMEOUT = 5.0
#: Seconds uvicorn waits for open connections when stopping.
GRACEFUL_SHUTDOWN = 3


class ServiceUnavailableError(HistoryError):
    """Raised when PostgreSQL or Redis cannot be reached, or lacks the table."""


class ServeError(HistoryError):
    """Raised when the app cannot listen or fails to start."""


def run_command[T](main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` for a command, after which a Ctrl-C leaves one line.

    A driver cancelled mid-connect (asyncpg's TLS probe) leaves a future that
    fails once the loop closes its socket and complains, when collected, that
    nobody read the failure. The user asked to stop: that noise is dropped.
    """
    runner = asyncio.Runner()
    try:
        return runner.run(main)
    except KeyboardInterrupt:
        runner.get_loop().set_exception_handler(lambda loop, context: None)
        raise
    finally:
        runner.close()


def check_database(url: str, table_name: str | None = None) -> None:
    """Connect to PostgreSQL at ``url`` and, given ``table_name``, find that
    table there; raise ``ServiceUnavailableError`` saying what failed."""
    run_command(_check_database(url, table_name))


async def _check_database(url: str, table_name: str | None) -> None:
    from ..db.engine import async_url
    from ..db.store import open_store

    async_url(url)  # a URL that is not PostgreSQL's fails here, said plainly
    where = make_url(url).render_as_string(hide_password=True)
    try:
        async with (
            asyncio.timeout(CHECK_TIMEOUT),
            open_store(url, table_name or DEFAULT_TABLE_NAME) as store,
        ):
            if table_name is None:
                async with store.engine.connect():
                    pass
            else:
                await store.present_columns()
    except NoSuchTableError:
        raise ServiceUnavailableError(
            f"no table {table_name!r} in {where}: "
            "create it with `gql-history create-tables`"
        ) from None
    except TimeoutError:
        raise ServiceUnavailableError(
            f"cannot connect to {where}: no answer in {CHECK_TIMEOUT:.0f}s"
        ) from None
    except (OSError, SQLAlchemyError) as exc:
        raise ServiceUnavailableError(
            f"cannot connect to {where}: {reason(exc)}"
        ) from exc


def check_redis(url: str) -> None:
    """PING Redis at ``url``; raise ``ServiceUnavailableError`` if none answers."""
    run_command(_check_redis(url))


async def _check_redis(url: str) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    try:
        client = aioredis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT)
    except ValueError as exc:
        raise ServiceUnavailableError(f"not a Redis URL: {reason(exc)}") from None
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await client.ping()
    except (OSError, TimeoutError, RedisError) as exc:
        raise ServiceUnavailableError(
            f"cannot connect to Redis at {hide_password(url)}: {reason(exc)}"
        ) from exc
    finally:
        await client.aclose()


def serve(
    app: Any,
    listener: socket.socket,
    *,
    on_ready: Callable[[str], object] | None = None,
) -> None:
    """Serve ``app`` on ``listener`` (from ``listen``) until SIGINT, SIGTERM
    or SIGHUP, then return once it has shut down and closed ``listener``.
    ``on_ready`` gets the base URL once it answers."""
    address, bound_port = listener.getsockname()[:2]

    def ready() -> None:
        if on_ready is not None:
            on_ready(_base_url(address, bound_port))

    config = uvicorn.Config(
        app, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN, lifespan="on"
    )
    server = _Server(config, ready)
    with interrupt_on_signals():
        try:
            server.run(sockets=[listener])
        except KeyboardInterrupt:
            return  # a signal before uvicorn took them over
        except SystemExit as exc:  # uvicorn's way to report a failed startup
            raise ServeError("the app failed to start (see the log above)") from exc
        finally:
            listener.close()
    if not server.started:
        raise ServeError("the app failed to start (see the log above)")


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Make SIGINT, and the first SIGTERM or SIGHUP, raise ``KeyboardInterrupt``.

    SIGINT even when inherited as ignored (as by a script's background job),
    so that it stops the demo at any stage; SIGTERM and SIGHUP (the terminal
    closed) so that ``with`` blocks (embedded servers) clean up on any.
    aio-fluid's app workers send their own process SIGTERM when they stop,
    and uvicorn raises the signals it caught again once it is done: later
    SIGTERMs and SIGHUPs are ignored.
    """
    received = False

    def interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        if not received:
            received = True
            raise KeyboardInterrupt

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, interrupt)
    previous_hup = signal.signal(signal.SIGHUP, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGHUP, previous_hup)


def reason(exc: BaseException) -> str:
    """The cause of ``exc`` on one line, without SQLAlchemy's decorations."""
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, ConnectionError) and cause.errno:
        text = os.strerror(cause.errno)
    elif isinstance(cause, OSError) and cause.strerror:
        text = cause.strerror
    else:
        text = str(cause) or type(cause).__name__
    text = text.split("\n(Background on this error")[0]
    return " ".join(text.split())


class _Server(uvicorn.Server):
    """A uvicorn server that reports when it is ready."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], object]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, plus SIGHUP (the terminal closed)."""
        previous = signal.signal(signal.SIGHUP, self.handle_exit)
        try:
            with super().capture_signals():
                yield
        finally:
            signal.signal(signal.SIGHUP, previous)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Stop, gracefully however many signals come.

        uvicorn would skip the app's shutdown (its pending writes) on a second
        Ctrl-C, and raise the signals again inside the event loop, where they
        become tracebacks; stopping takes a few seconds at most anyway, and
        ``serve`` returning is what the signals asked for.
        """
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._on_ready()


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (0 picks a free port), bound before
    anything else starts, so that a busy port fails first and alone."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family = infos[0][0]
        # the protocol named: asyncio sets TCP_NODELAY on accepted sockets
        # only when it is IPPROTO_TCP (else keep-alive requests wait ~40 ms)
        listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {reason(exc)}") from exc
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
        listener.set_inheritable(True)
    except OSError as exc:
        listener.close()
        hint = " (choose another with --port)" if exc.errno == errno.EADDRINUSE else ""
        raise ServeError(
            f"cannot listen on {host}:{port}: {reason(exc)}{hint}"
        ) from exc
    return listener


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def hide_password(url: str) -> str:
    """``url`` with its password, if any, masked."""
    scheme, _, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return f"{scheme}://{credentials}{at}{location}"
