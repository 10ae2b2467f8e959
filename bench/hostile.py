"""What hostile requests cost a real ``gql-history serve``: its memory after
many large documents, a trivial query's latency while big filters arrive,
and requests on a kept-alive connection.

    .venv/bin/python -m bench.hostile --dsn postgresql://postgres@127.0.0.1:5432/db

It creates the table ``bench_hostile`` in that (loopback) database and
serves it on 127.0.0.1; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gql_history import TaskHistoryPlugin

TABLE = "bench_hostile"
DOCUMENTS = 120
TRIVIAL = {"query": "{ tasks { name } }"}
COMMAND = Path(sys.executable).with_name("gql-history")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _serve(dsn: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [str(COMMAND), "serve", "--database-url", dsn, "--table-name", TABLE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "GraphiQL at " in line:
            return process, line.split("GraphiQL at ")[1].split(",")[0]
    process.kill()
    raise RuntimeError("serve did not start")


async def _latencies(client: httpx.AsyncClient, url: str, count: int) -> list[float]:
    found = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.post(url, json=TRIVIAL)
        response.raise_for_status()
        found.append((time.perf_counter() - started) * 1000)
    return found


async def _flood(url: str, body: bytes, until: float) -> int:
    sent = 0
    async with httpx.AsyncClient(timeout=60) as client:
        while time.monotonic() < until:
            await client.post(
                url, content=body, headers={"content-type": "application/json"}
            )
            sent += 1
    return sent


async def _measure(url: str, pid: int) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        await _latencies(client, url, 5)
        before = _rss_mb(pid)
        for index in range(DOCUMENTS):  # distinct, each one literal
            literal = f"{index}-" + "x" * 900_000
            await client.post(
                url, json={"query": f'{{ run(id: "{literal}") {{ runId }} }}'}
            )
        after = _rss_mb(pid)
        print(
            f"RSS before/after {DOCUMENTS} distinct 900 KB documents: "
            f"{before:.0f} / {after:.0f} MB"
        )

        alone = await _latencies(client, url, 20)
        values = ",".join(['"t"'] * 200_000)
        body = (
            '{"query": "query($f: TaskRunFilter) { runs(filter: $f) { totalCount } }", '
            f'"variables": {{"f": {{"task": [{values}]}}}}}}'
        ).encode()
        until = time.monotonic() + 5
        floods = [asyncio.create_task(_flood(url, body, until)) for _ in range(4)]
        await asyncio.sleep(0.2)
        busy = await _latencies(client, url, 20)
        sent = sum(await asyncio.gather(*floods))
        print(
            f"trivial query, ms (median / max): alone {statistics.median(alone):.1f} / "
            f"{max(alone):.1f}; with 4 clients sending {len(body) // 1024} KB filters "
            f"({sent} sent) {statistics.median(busy):.1f} / {max(busy):.1f}"
        )

    async with httpx.AsyncClient(timeout=60) as kept:  # one kept-alive connection
        rest = url.replace("/tasks-graphql", "/tasks-history?limit=5")
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            (await kept.get(rest)).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
        print(
            "kept-alive REST requests after the first, ms (median / max): "
            f"{statistics.median(timings[1:]):.1f} / {max(timings[1:]):.1f}"
        )


async def _create(dsn: str) -> None:
    plugin = TaskHistoryPlugin(dsn, table_name=TABLE)
    await plugin.create_tables()
    await plugin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="a loopback PostgreSQL URL")
    args = parser.parse_args()
    asyncio.run(_create(args.dsn))
    process, url = _serve(args.dsn)
    try:
        asyncio.run(_measure(url, process.pid))
    finally:
        process.terminate()
        process.wait(15)


if __name__ == "__main__":
    main()
