"""``python -m bench.index_cost``: what the indexes of issue 16 cost ingest.

The six order indexes (start, end and duration, each way) and the three of
text search (trigrams of the task name and of the error message, the run-id
prefix) are maintained on every write. This measures our writer's saturating
throughput (``bench.ingest``'s ``ours`` test) into tables side by side: one
with every index, one without those nine, one with the trigram index of ids
first built instead of the prefix one; interleaved round by round (each
round starting at the next table), at each concurrency; the figures are the
median of the rounds. ``--prefill N`` first copies N runs of the seeded
``runs_<N>`` table into each, so that the indexes written are of a
realistic size (run ``python -m bench`` first).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
from typing import Any

import asyncpg
import sqlalchemy as sa

from gql_history import history_table
from gql_history.db.tables import all_indexes

from .cli import DEFAULT_DSN
from .ingest import _ours
from .seed import table_name_for

#: The indexes issue 16 added: an order's (key other than queued), a trigram
#: one, the run-id prefix one.
_ISSUE_16 = re.compile(r"_(start|end|duration)_(asc|desc)_id$|_trgm$|_id_prefix$")
TABLES = {
    "with": "ingest_idx_with",
    "without": "ingest_idx_without",
    "id-trigram": "ingest_idx_id_trigram",
}


def issue_16_indexes(table: sa.Table) -> list[sa.Index]:
    """The nine indexes of ``table`` that issue 16 added."""
    return [i for i in all_indexes(table) if _ISSUE_16.search(i.name or "")]


def table_for(mode: str) -> sa.Table:
    """The history table of ``mode``: all indexes, without issue 16's, or
    with a trigram index of ids instead of the prefix one (as first built)."""
    table = history_table(sa.MetaData(), TABLES[mode])
    if mode == "without":
        dropped = set(issue_16_indexes(table))
        table.indexes.difference_update(dropped)
        search = table.info["search_indexes"]
        table.info["search_indexes"] = tuple(i for i in search if i not in dropped)
    elif mode == "id-trigram":
        [prefix] = [i for i in table.indexes if (i.name or "").endswith("_id_prefix")]
        table.indexes.discard(prefix)
        [name_trgm, *_] = table.info["search_indexes"]
        id_trgm = sa.Index(
            f"ix_{table.name}_id_trgm",
            table.c.id,
            postgresql_using="gin",
            postgresql_ops={"id": "gin_trgm_ops"},
            info=name_trgm.info,
        )
        table.indexes.discard(id_trgm)
        table.info["search_indexes"] += (id_trgm,)
    return table


async def prepare(dsn: str, modes: list[str], prefill: int) -> None:
    """Both tables afresh, each with ``prefill`` seeded runs and its indexes."""
    conn = await asyncpg.connect(dsn)
    try:
        for mode in modes:
            name = TABLES[mode]
            await conn.execute(f'DROP TABLE IF EXISTS "{name}"')
            await _ours(dsn, 1, runs=0, rate=None, seconds=1, table=table_for(mode))
            if prefill:
                source = table_name_for(prefill)
                await conn.execute(f'INSERT INTO "{name}" SELECT * FROM "{source}"')
            await conn.execute(f'VACUUM (ANALYZE) "{name}"')
            count = await conn.fetchval(
                "SELECT count(*) FROM pg_indexes WHERE tablename = $1", name
            )
            print(f"  {name}: {prefill:,} runs, {count} indexes", flush=True)
    finally:
        await conn.close()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    await prepare(args.dsn, args.modes, args.prefill)
    rates: dict[tuple[int, str], list[float]] = {}
    for round_ in range(args.rounds):
        for concurrency in args.concurrencies:
            # each round starts at the next mode
            shift = round_ % len(args.modes)
            for mode in args.modes[shift:] + args.modes[:shift]:
                result = await _ours(
                    args.dsn,
                    concurrency,
                    runs=args.runs,
                    rate=None,
                    seconds=10,
                    table=table_for(mode),
                    truncate=False,
                )
                assert result["lost"] == 0, result
                rates.setdefault((concurrency, mode), []).append(result["events_per_s"])
                print(
                    f"  round {round_ + 1} c={concurrency:<3} {mode:8} "
                    f"{result['events_per_s']:9.0f} events/s "
                    f"(lag p99 {result['lag_p99_ms']:.0f} ms)",
                    flush=True,
                )
    print(f"\nmedian of {args.rounds} rounds, {args.runs:,} runs a test, events/s:")
    print("| concurrency | " + " | ".join(args.modes) + " |")
    print("|---|" + "---|" * len(args.modes))
    summary: dict[str, Any] = {}
    for concurrency in args.concurrencies:
        medians = {m: statistics.median(rates[concurrency, m]) for m in args.modes}
        summary[str(concurrency)] = medians
        cells = " | ".join(f"{medians[m]:,.0f}" for m in args.modes)
        print(f"| {concurrency} | {cells} |")
    conn = await asyncpg.connect(args.dsn)
    try:
        for mode in args.modes:
            name = TABLES[mode]
            await conn.execute(f'DROP TABLE IF EXISTS "{name}"')
    finally:
        await conn.close()
    return summary


def _modes(text: str) -> list[str]:
    modes = text.split(",")
    if unknown := [m for m in modes if m not in TABLES]:
        raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}")
    return modes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.index_cost")
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--runs", type=int, default=10_000, help="runs a test")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--concurrencies",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[1, 32],
    )
    parser.add_argument(
        "--modes",
        type=_modes,
        default=list(TABLES),
        help="with, without (issue 16's nine indexes), id-trigram",
    )
    parser.add_argument(
        "--prefill", type=int, default=0, help="copy runs_<N> into both tables"
    )
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
