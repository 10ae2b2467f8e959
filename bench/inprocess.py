"""In-process page times, interleaved: each app over ASGI (no server, no
socket) against the raw asyncpg floor, and our compiled statement alone.

``python -m bench.inprocess --rows 1000000`` (after ``python -m bench`` has
seeded the table) sends the requests round-robin over the targets, so load
from elsewhere on the machine hits them alike, and prints each median with
its ratio to the floor: the floor is the page's rows fetched by asyncpg
(``floor_query``); ``ours-graphql: statement alone`` is the JSON statement
the compiled path sends, run on asyncpg directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import asyncpg

from .apps import build
from .breakdown import DSN
from .scenarios import (
    Fixtures,
    HttpRequest,
    floor_query,
    http_request,
    load_fixtures,
)
from .seed import table_name_for

Call = Callable[[], Awaitable[Any]]
TARGETS = ("ours-graphql", "ours-graphql-strawberry", "peer")


async def _app_call(target: str, dsn: str, fx: Fixtures, scenario: str) -> Any:
    """The app of ``target`` and a call sending it the scenario's request."""
    app = build(target, dsn, fx.table)
    return app, asgi_call(app, http_request(target, scenario, fx))


def asgi_call(app: Any, spec: HttpRequest) -> Call:
    """A call sending ``app`` the request ``spec`` as an ASGI server would:
    one scope, the body in one message (no HTTP client's time in the figure:
    httpx's own costs about 1 ms a page); raises unless it answers 200."""
    body = b"" if spec.body is None else json.dumps(spec.body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": spec.method,
        "scheme": "http",
        "path": spec.path,
        "raw_path": spec.path.encode(),
        "root_path": "",
        "query_string": urlencode(spec.params).encode(),
        "headers": [
            (b"host", b"bench"),
            (b"accept", b"application/json"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def call() -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        started: list[Any] = []

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.append(message["status"])

        await app(dict(scope), receive, send)
        if started != [200]:
            raise AssertionError(f"{spec.method} {spec.path}: HTTP {started}")

    return call


async def statement_call(app: Any, call: Call, conn: asyncpg.Connection) -> Call:
    """The compiled statement ``call`` sends, as a call on ``conn`` alone."""
    reads = app.state.history_service.store.reads
    fetch = reads.fetch
    captured: dict[str, Any] = {}

    async def capture(read: Any, params: Any = None) -> Any:
        captured["sql"], captured["args"] = read.sql, read.args(params)
        return await fetch(read, params)

    reads.fetch = capture
    try:
        await call()
    finally:
        del reads.fetch
    statement = await conn.prepare(captured["sql"])
    values = captured["args"]
    return lambda: statement.fetch(*values)


async def measure(dsn: str, fx: Fixtures, scenario: str, n: int) -> dict[str, float]:
    """Median milliseconds per target for ``scenario``, interleaved."""
    conn = await asyncpg.connect(dsn)
    sql, args = floor_query(scenario, fx)
    floor = await conn.prepare(sql)
    calls: dict[str, Call] = {"floor (asyncpg rows)": lambda: floor.fetch(*args)}
    opened = []
    for target in TARGETS:
        app, call = await _app_call(target, dsn, fx, scenario)
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        opened.append(context)
        calls[f"{target}: app over ASGI"] = call
        if target == "ours-graphql":
            statement = await statement_call(app, call, conn)
            calls["ours-graphql: statement alone"] = statement
    try:
        return await interleaved(calls, n)
    finally:
        for context in opened:
            await context.__aexit__(None, None, None)
        await conn.close()


async def interleaved(calls: dict[str, Call], n: int) -> dict[str, float]:
    """Median milliseconds of each call over ``n`` rounds (after a warm-up),
    each round calling them all, starting at the next one each time."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(max(5, n // 5)):
        for call in calls.values():
            await call()
    names = list(calls)
    for index in range(n):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            await calls[name]()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(times) for name, times in samples.items()}


async def main(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(args.dsn)
    try:
        fx = await load_fixtures(conn, table_name_for(args.rows), args.rows)
    finally:
        await conn.close()
    for scenario in args.scenarios.split(","):
        result = await measure(args.dsn, fx, scenario, args.n)
        floor = result["floor (asyncpg rows)"]
        print(f"\n{scenario}, {args.rows:,} rows, median of {args.n}, interleaved:")
        for name, ms in result.items():
            print(f"  {name:40} {ms:8.3f} ms  {ms / floor:5.2f}x floor")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dsn", default=DSN)
    parser.add_argument("--scenarios", default="newest,deep,by_id")
    parser.add_argument("-n", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
