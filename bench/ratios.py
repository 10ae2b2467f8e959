"""``python -m bench.ratios``: each scenario's latency against the newest
page's, all measured in the same minutes.

``python -m bench`` measures one scenario after the other, so on a shared
machine two scenarios can meet different loads. Here the servers start once
and every round sends one request of each (scenario, target) pair, in an
order rotating from round to round; the figures are the medians over the
rounds, and each scenario's ratio is to the same target's newest page.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from .cli import add_client_argument, seeded_parser
from .clients import http_client, to_httpx
from .load import percentile
from .machine import ForeignCpu
from .reads import _Floor, http_call
from .scenarios import COUNTS, OURS, load_fixtures, probe_request, serves
from .seed import table_name_for
from .servers import Server

SCENARIOS = ("newest", *OURS, *COUNTS)
TARGETS = ("floor", "peer", "ours-rest", "ours-graphql")


async def measure(args: argparse.Namespace) -> None:
    table = table_name_for(args.rows)
    conn = await asyncpg.connect(args.dsn)
    try:
        fx = await load_fixtures(conn, table, args.rows)
    finally:
        await conn.close()
    database = args.dsn.rsplit("/", 1)[-1]
    monitor = ForeignCpu(database)
    calls = {}
    async with contextlib.AsyncExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        floor = await stack.enter_async_context(_Floor(args.dsn, 1))
        for target in args.targets:
            if target == "floor":
                for scenario in SCENARIOS:
                    calls[scenario, target] = floor.calls(scenario, fx)[0]
                continue
            server = stack.enter_context(
                Server(target, args.dsn, table, log_dir=log_dir)
            )
            client = await stack.enter_async_context(
                http_client(args.client, server.base_url, 1)
            )
            server.start(to_httpx(probe_request(target), server.base_url))
            monitor.own.add(server.pid)
            for scenario in SCENARIOS:
                if serves(target, scenario):
                    checked, lean = http_call(client, target, scenario, fx)
                    await checked()  # the answer is what the scenario asks
                    calls[scenario, target] = lean
        pairs = list(calls)
        samples: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
        await monitor.quiet(60)
        monitor.start()
        began = time.perf_counter()
        for round_ in range(args.warmup + args.rounds):
            shift = round_ % len(pairs)
            for pair in pairs[shift:] + pairs[:shift]:
                started = time.perf_counter()
                await calls[pair]()
                if round_ >= args.warmup:
                    samples[pair].append((time.perf_counter() - started) * 1000)
        load = monitor.stop() / (time.perf_counter() - began)
    print(
        f"\n{args.rows:,} runs, {args.rounds} interleaved rounds (after "
        f"{args.warmup} warm-up ones), foreign load {load:.2f} CPUs:"
    )
    print("| scenario | target | median ms | p95 ms | / newest |")
    print("|---|---|---|---|---|")
    for scenario in SCENARIOS:
        for target in args.targets:
            if (scenario, target) not in samples:
                continue
            times = samples[scenario, target]
            median = statistics.median(times)
            newest = statistics.median(samples["newest", target])
            print(
                f"| {scenario} | {target} | {median:.2f} | "
                f"{percentile(times, 0.95):.2f} | {median / newest:.2f}x |"
            )


def main() -> None:
    parser = seeded_parser("python -m bench.ratios")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    add_client_argument(parser)
    parser.add_argument(
        "--targets",
        type=lambda text: [t for t in text.split(",") if t in TARGETS],
        default=list(TARGETS),
    )
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
