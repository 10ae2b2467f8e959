"""The benchmark's results as markdown (and the environment they came from)."""

from __future__ import annotations

import hashlib
import math
import os
import platform
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg

from .machine import NOISY_LOAD
from .scenarios import DESCRIPTIONS

PG_SETTINGS = (
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "random_page_cost",
    "effective_io_concurrency",
    "max_connections",
    "synchronous_commit",
    "fsync",
    "wal_level",
    "max_wal_size",
    "jit",
    "max_parallel_workers_per_gather",
)


async def environment(dsn: str) -> dict[str, Any]:
    """CPU count, package versions and the PostgreSQL server's settings."""
    conn = await asyncpg.connect(dsn)
    try:
        server = await conn.fetchval("SHOW server_version")
        rows = await conn.fetch(
            "SELECT name, current_setting(name) AS value FROM pg_settings "
            "WHERE name = ANY($1::text[]) ORDER BY name",
            list(PG_SETTINGS),
        )
    finally:
        await conn.close()
    packages = ("aio-fluid", "sqlalchemy", "asyncpg", "fastapi", "pydantic")
    packages += ("strawberry-graphql", "uvicorn", "httpx", "aiohttp")
    return {
        "code": code_state(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: version(name) for name in packages},
        "postgres": server,
        "postgres_settings": {row["name"]: row["value"] for row in rows},
    }


def code_state() -> str:
    """A digest of the gql_history sources the run imports."""
    package = Path(__file__).resolve().parents[1] / "gql_history"
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"gql_history/*.py sha256 {digest.hexdigest()[:12]}"


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ratio(a: Any, b: Any) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}x"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    """The whole report."""
    env = results["environment"]
    seed = results.get("seed", {})
    out = [
        "# gql_history benchmark",
        "",
        f"`{results['command']}`, {results['started']}",
        "",
        f"- rows: {results['rows']:,} in `{seed.get('table')}` "
        f"({'reused' if seed.get('reused') else 'seeded'} in "
        f"{_f(seed.get('seconds'), 1)} s; table {seed.get('table_bytes', 0) >> 20} MiB,"
        f" with indexes {seed.get('total_bytes', 0) >> 20} MiB)",
        f"- code: {results.get('code', '?')} ({env.get('code')})",
        f"- CPUs: {env['cpu_count']}; Python {env['python']}; PostgreSQL "
        f"{env['postgres']}",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()),
        "- PostgreSQL settings: "
        + ", ".join(f"{k}={v}" for k, v in env["postgres_settings"].items()),
        "",
    ]
    if reads := results.get("reads"):
        out += _reads(results, reads)
    if explain := results.get("explain"):
        out += _explain(explain)
    if ingest := results.get("ingest"):
        out += _ingest(ingest)
    if profile := results.get("profile"):
        out += _profile(profile)
    for error in results.get("errors", ()):
        out += ["## Error", "", "```", error.rstrip(), "```", ""]
    return "\n".join(out)


def _reads(results: dict[str, Any], reads: dict[str, Any]) -> list[str]:
    opts = results["read_options"]
    out = [
        "## Reads",
        "",
        f"Median and p95 of {opts['requests']} sequential requests per target "
        f"after {opts['warmup']} warm-up ones, sent round-robin over the targets "
        "(each round starting at the next); "
        f"requests/s of {opts['clients']} concurrent clients over "
        f"{opts['seconds']:g} s per target, in {opts.get('rounds', 1)} slices "
        "taken in rotating target order. One uvicorn worker per server, all "
        f"running throughout; client ({opts.get('client', 'httpx')}) on the same "
        "machine over 127.0.0.1, its CPU per sequential request given (the "
        "floor's is asyncpg's). "
        "Foreign load: CPUs taken by other processes while measuring "
        f"(measured again above {NOISY_LOAD}).",
        "",
    ]
    rows = []
    for scenario, by_target in reads.items():
        for target, r in by_target.items():
            rows.append(
                [
                    f"{scenario} ({DESCRIPTIONS[scenario]})",
                    target,
                    r["median_ms"],
                    r["p95_ms"],
                    r["rps"],
                    r.get("cpu_ms"),
                    r.get("load_cpu_ms"),
                    r.get("client_cpu_ms"),
                    r["rows"],
                    r["errors"],
                    r.get("foreign_load"),
                    r.get("attempts"),
                ]
            )
    header = ["scenario", "target", "median ms", "p95 ms", "req/s"]
    header += ["server CPU ms/req (sequential)", "(under load)"]
    header += ["client CPU ms/req", "rows", "errors"]
    header += ["foreign load (CPUs)", "attempts"]
    out += _table(header, rows)
    failures = [
        f"- {scenario}, {target}: {count} x {failure}"
        for scenario, by_target in reads.items()
        for target, r in by_target.items()
        for failure, count in r.get("failures", {}).items()
    ]
    if failures:
        out += ["Errors of the concurrent clients:", "", *failures, ""]
    ratio_rows = []
    for scenario, by_target in reads.items():
        peer, floor = by_target.get("peer"), by_target.get("floor")
        for name, ours in by_target.items():
            if not name.startswith("ours"):
                continue
            ratio_rows.append(
                [
                    scenario,
                    name,
                    _ratio(ours["median_ms"], peer and peer["median_ms"]),
                    _ratio(ours["rps"], peer and peer["rps"]),
                    _ratio(ours.get("load_cpu_ms"), peer and peer.get("load_cpu_ms")),
                    _ratio(ours["median_ms"], floor and floor["median_ms"]),
                    _ratio(ours["rps"], floor and floor["rps"]),
                ]
            )
    out += ["### Ratios (median: lower is better; req/s: higher is better)", ""]
    header = [
        "scenario",
        "ours",
        "median ours/peer",
        "req/s ours/peer",
        "server CPU/req ours/peer",
        "median ours/floor",
        "req/s ours/floor",
    ]
    out += _table(header, ratio_rows)
    deep_rows = []
    for name in {t: None for by_target in reads.values() for t in by_target}:
        newest = reads.get("newest", {}).get(name)
        deep = reads.get("deep", {}).get(name)
        if newest and deep:
            deep_rows.append([name, _ratio(deep["median_ms"], newest["median_ms"])])
    if deep_rows:
        out += ["### Deep page median / newest page median (target <= 1.3x)", ""]
        out += _table(["target", "deep/newest"], deep_rows)
    if memory := results.get("memory"):
        out += ["### Server memory (uvicorn process)", ""]
        out += _table(
            ["target", "RSS after start MiB", "RSS at end MiB", "peak RSS MiB"],
            [
                [
                    t,
                    m["started_rss_kb"] / 1024,
                    m["rss_kb"] / 1024,
                    m["peak_rss_kb"] / 1024,
                ]
                for t, m in memory.items()
            ],
        )
    return out


def _explain(explain: dict[str, Any]) -> list[str]:
    out = ["## EXPLAIN (ANALYZE, BUFFERS)", ""]
    rows = []
    for scenario, by_target in explain.items():
        for target, plans in by_target.items():
            for i, plan in enumerate(plans):
                rows.append(
                    [
                        scenario,
                        target + (f" #{i + 1}" if len(plans) > 1 else ""),
                        "**SEQ SCAN**" if plan["seq_scan"] else "no",
                        plan["execution_ms"],
                        plan["shared_hit_blocks"],
                        plan["plan"],
                    ]
                )
    header = ["scenario", "target", "seq scan", "exec ms", "buffers hit", "plan"]
    return out + _table(header, rows)


def _ingest(ingest: dict[str, Any]) -> list[str]:
    opts = ingest["options"]
    out = [
        "## Ingest (queued -> running -> success per run)",
        "",
        f"peer and asyncpg: {opts['seconds']:g} s of awaited single-row upserts; "
        f"ours: {opts['runs']:,} runs through one RunWriter, timed to the last "
        "commit. Lag: event submitted -> its row committed.",
        "",
    ]
    rows = []
    for key, by_path in ingest.items():
        if not key.isdigit():
            continue
        for path, r in by_path.items():
            rows.append(
                [
                    path,
                    r["concurrency"],
                    r["events_per_s"],
                    r["events"],
                    r.get("statements", r["events"]),
                    r.get("lag_p50_ms"),
                    r.get("lag_p99_ms"),
                    r.get("buffer_peak_runs"),
                    r["lost"],
                    r.get("foreign_load"),
                ]
            )
        peer, ours = by_path["peer"], by_path["ours"]
        rows.append(
            [
                f"**ours/peer at {key}**",
                "",
                _ratio(ours["events_per_s"], peer["events_per_s"]),
                "",
                "",
                "",
                "",
                "",
                "",
                "",
            ]
        )
    for key, paced in ingest.items():
        if not key.startswith("paced"):
            continue
        label = "ours" + key.removeprefix("paced")
        rows.append(
            [
                f"{label} paced at {paced['offered_rate']:,.0f} events/s",
                paced["concurrency"],
                paced["events_per_s"],
                paced["events"],
                paced["statements"],
                paced["lag_p50_ms"],
                paced["lag_p99_ms"],
                paced["buffer_peak_runs"],
                paced["lost"],
                paced.get("foreign_load"),
            ]
        )
    header = [
        "path",
        "producers",
        "events/s",
        "events",
        "statements",
        "lag p50 ms",
        "lag p99 ms",
        "buffer peak (runs)",
        "lost",
        "foreign load",
    ]
    return out + _table(header, rows)


def _profile(profile: dict[str, Any]) -> list[str]:
    out = ["## Profile (py-spy, server process, during the concurrent load)", ""]
    for name, summary in profile.items():
        out += [f"### {name}", ""]
        out += _table(
            ["layer", "inclusive %"],
            [[k, v] for k, v in summary["inclusive"].items()],
        )
        out += _table(
            ["function (self time)", "%"],
            [[k, v] for k, v in summary["self"].items()],
        )
    return out
