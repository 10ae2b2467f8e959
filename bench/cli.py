"""The benchmark's command line: seed, read, explain and ingest, then report."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from .apps import graphql_available
from .clients import CLIENTS
from .explain import run_explain
from .ingest import IngestOptions, run_ingest
from .profile import summarize_dir
from .reads import ReadOptions, run_reads
from .report import environment, markdown
from .scenarios import SCENARIOS, load_fixtures
from .seed import ensure_database, seed

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/gql_history_bench"
RESULTS = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).parent / "results")
TARGETS = (
    "floor",
    "peer",
    "ours-rest",
    "ours-graphql",
    "ours-graphql-strawberry",
    "ours-graphql-pool20",
)
#: Experiments, measured only when named in --targets.
EXPERIMENTS = ("ours-graphql-pool20",)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _csv(allowed: tuple[str, ...]) -> Any:
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if unknown := [item for item in items if item not in allowed]:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}; choose among {', '.join(allowed)}"
            )
        return items

    return parse


def seeded_parser(prog: str) -> argparse.ArgumentParser:
    """A parser of a tool reading the seeded table: ``--rows`` and ``--dsn``."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--rows", type=int, default=1_000_000, help="runs_<rows>")
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    return parser


def add_client_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="aiohttp",
        help="the HTTP client sending the requests (see bench/clients.py)",
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="runs to seed")
    parser.add_argument(
        "--dsn",
        default=DEFAULT_DSN,
        help="benchmark database on a loopback server (created if missing)",
    )
    parser.add_argument("--reseed", action="store_true", help="seed even if present")
    parser.add_argument("--scenarios", type=_csv(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument(
        "--targets",
        type=_csv(TARGETS),
        default=None,
        help="default: all (ours-graphql once gql_history.create_app exists)",
    )
    parser.add_argument("--requests", type=int, default=100, help="timed, sequential")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    add_client_argument(parser)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="of each concurrent load"
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=3,
        help="measurements of a scenario when foreign load disturbs it",
    )
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument("--skip-explain", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument(
        "--ingest-runs", type=int, default=20_000, help="runs through our writer"
    )
    parser.add_argument(
        "--ingest-seconds", type=float, default=None, help="default: --seconds"
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=None,
        help="events/s of the lag test (default: 10x the peer's rate at 32)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the servers during each concurrent load (slows them)",
    )
    parser.add_argument("--name", default=None, help="results file name")
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="run the live code, not a copy taken at the start",
    )
    args = parser.parse_args(argv)
    url = make_url(args.dsn)
    if url.host not in _LOOPBACK:
        parser.error("--dsn must point at a server on 127.0.0.1")
    if url.database in (None, "test", "postgres"):
        parser.error("--dsn must name a dedicated benchmark database")
    if args.targets is None:
        args.targets = [
            t
            for t in TARGETS
            if t not in EXPERIMENTS
            and (not t.startswith("ours-graphql") or graphql_available())
        ]
    return args


async def main(args: argparse.Namespace) -> dict[str, Any]:
    dsn = make_url(args.dsn).set(drivername="postgresql").render_as_string(False)
    admin = make_url(dsn).set(database="postgres").render_as_string(False)
    database = make_url(dsn).database or ""
    await ensure_database(admin, database)
    name = args.name or f"bench-{args.rows}"
    results: dict[str, Any] = {
        "command": "python -m bench " + shlex.join(sys.argv[1:]),
        "code": os.environ.get("BENCH_SNAPSHOT", "live working tree"),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "environment": await environment(dsn),
        "errors": [],
    }
    print(f"seeding {args.rows:,} runs ...", flush=True)
    seeded = await seed(dsn, args.rows, force=args.reseed)
    results["seed"] = asdict(seeded)
    print(f"  {seeded}", flush=True)
    conn = await asyncpg.connect(dsn)
    try:
        fx = await load_fixtures(conn, seeded.table, args.rows)
    finally:
        await conn.close()
    print(f"  deep page after run {fx.depth:,}: {fx.deep}", flush=True)

    if not args.skip_reads:
        profile_dir = RESULTS / f"{name}-profile" if args.profile else None
        opts = ReadOptions(
            requests=args.requests,
            warmup=args.warmup,
            clients=args.clients,
            seconds=args.seconds,
            attempts=args.attempts,
            profile_dir=profile_dir,
            client=args.client,
        )
        results["read_options"] = {
            k: v for k, v in asdict(opts).items() if k != "profile_dir"
        }
        print(f"reads: {', '.join(args.targets)}", flush=True)
        results["reads"], results["memory"] = await run_reads(
            args.targets,
            dsn,
            fx,
            args.scenarios,
            opts,
            database=database,
            log_dir=RESULTS,
        )
        if profile_dir is not None and profile_dir.exists():
            results["profile"] = summarize_dir(profile_dir)

        _write(results, name)

    if not args.skip_explain:
        print("explain ...", flush=True)
        try:
            results["explain"] = await run_explain(
                dsn, fx, args.targets, args.scenarios
            )
        except Exception:
            results["errors"].append(traceback.format_exc())
            traceback.print_exc()
        _write(results, name)

    if not args.skip_ingest:
        print("ingest ...", flush=True)
        results["ingest"] = await run_ingest(
            dsn,
            database=database,
            opts=IngestOptions(
                runs=args.ingest_runs,
                seconds=args.ingest_seconds or args.seconds,
                paced_rate=args.paced_rate,
            ),
        )

    report = _write(results, name)
    print()
    print(report)
    print(f"written to {RESULTS / name}.md and .json", flush=True)
    return results


def _write(results: dict[str, Any], name: str) -> str:
    """Save the results so far (a later phase failing keeps the earlier ones)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = markdown(results)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
    (RESULTS / f"{name}.md").write_text(report + "\n")
    return report


def run(argv: list[str]) -> None:
    """Parse ``argv``, run the benchmark and report."""
    arguments = parse_args(argv)
    began = time.perf_counter()
    asyncio.run(main(arguments))
    print(f"done in {time.perf_counter() - began:.0f} s")
