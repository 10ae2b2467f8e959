"""How soon the dashboard shows runs over a large table, in Debian's Chromium.

``python -m bench.dashboard --rows 1000000`` seeds (or reuses) the benchmark
table in the database of ``--dsn`` (default: ``DATABASE_URL``), serves it
with ``gql-history serve``, and loads ``/tasks-ui`` a few times per view in a
fresh browser context each (nothing cached): the first contentful paint,
the first table row, and the overview's chart, in milliseconds from
navigation start, medians of ``--repeat`` loads. Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from playwright.async_api import Browser, async_playwright

from .seed import SCENARIO_TASK, seed

CHROMIUM = "/usr/bin/chromium"
COMMAND = Path(sys.executable).with_name("gql-history")
VIEWS = {
    "newest": "",
    "one state": "?state=FAILURE",
    "one task": f"?task={SCENARIO_TASK}",
    "task and state": f"?task={SCENARIO_TASK}&state=FAILURE",
    "params": '?params={"user":"u42"}',
    "last 24 hours": "?window=24h",
}
#: Recorded in the page before its scripts run.
_PROBE = """
new MutationObserver((_, observer) => {
  if (document.querySelector("tr[data-run-id]") && !window.__row) {
    window.__row = performance.now();
  }
  if (document.querySelector(".chart canvas") && !window.__chart) {
    window.__chart = performance.now();
  }
  if (window.__row && window.__chart) observer.disconnect();
}).observe(document, { childList: true, subtree: true });
"""


async def load(browser: Browser, url: str) -> dict[str, float]:
    """One cold load of ``url``: its paint, first row and chart times."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.add_init_script(_PROBE)
    await page.goto(url)
    await page.wait_for_selector("tr[data-run-id], .empty", timeout=60_000)
    await page.wait_for_selector(".chart canvas, .overview .empty", timeout=60_000)
    times: dict[str, float] = await page.evaluate(
        """() => ({
          paint: performance.getEntriesByName("first-contentful-paint")[0]?.startTime,
          row: window.__row, chart: window.__chart,
        })"""
    )
    await context.close()
    return times


async def measure(base: str, repeat: int) -> dict[str, dict[str, float]]:
    results = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
        )
        for name, query in VIEWS.items():
            loads = [
                await load(browser, f"{base}/tasks-ui{query}") for _ in range(repeat)
            ]
            results[name] = {
                key: statistics.median(x[key] for x in loads if x.get(key) is not None)
                for key in ("paint", "row", "chart")
                if any(x.get(key) is not None for x in loads)
            }
        await browser.close()
    return results


@contextlib.contextmanager
def served(dsn: str, table: str) -> Iterator[str]:
    """``gql-history serve`` of ``table`` on a free port: its base URL."""
    args = ["serve", "--database-url", dsn, "--table-name", table, "--port", "0"]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [str(COMMAND), *args], stdout=log, stderr=subprocess.STDOUT, text=True
        )
        try:
            yield _base_url(process, log)
        finally:
            process.terminate()
            process.wait(15)


def _base_url(process: subprocess.Popen[str], log: IO[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        log.seek(0)
        if found := re.search(r"GraphiQL at (\S+)/tasks-graphql", log.read()):
            return found.group(1)
        time.sleep(0.2)
    log.seek(0)
    raise SystemExit(f"gql-history serve did not start:\n{log.read()}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.dsn:
        raise SystemExit("no database: pass --dsn or set DATABASE_URL")
    seeded = asyncio.run(seed(args.dsn, args.rows))
    with served(args.dsn, seeded.table) as base:
        results = asyncio.run(measure(base, args.repeat))
    print(f"Dashboard over {args.rows:,} runs (median of {args.repeat} cold loads, ms)")
    print(f"{'view':<16} {'first paint':>12} {'first row':>10} {'chart':>8}")
    for name, times in results.items():
        cells = [
            f"{times.get(key, float('nan')):.0f}" for key in ("paint", "row", "chart")
        ]
        print(f"{name:<16} {cells[0]:>12} {cells[1]:>10} {cells[2]:>8}")


if __name__ == "__main__":
    main(sys.argv[1:])
