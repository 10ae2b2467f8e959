"""The benchmark database and its history table of N realistic runs.

Rows come from one ``INSERT ... SELECT FROM generate_series`` whose every
column is a deterministic hash of the row number, so a given N always yields
the same table. The table and its indexes are gql_history's own
(``HistoryStore.create_tables``); the secondary indexes are built after the
load, which is several times faster than maintaining them row by row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import sqlalchemy as sa

from gql_history import HistoryStore, history_table
from gql_history.db.engine import create_engine
from gql_history.db.tables import all_indexes

#: Bumped whenever the generated data changes, so older tables are reseeded.
SEED_VERSION = 3
#: Runs are queued over the 30 days before this instant.
WINDOW_END = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=30)
#: Consecutive runs share a block of this many; a block spreads over 1 to 8
#: timestamps, so up to 40 runs tie on one ``queued``.
BLOCK = 40

TASK_NAMES = (
    "send_email",
    "build_report",
    "sync_accounts",
    "refresh_cache",
    "charge_invoice",
    "resize_image",
    "index_documents",
    "export_csv",
    "import_feed",
    "compute_metrics",
    "cleanup_sessions",
    "notify_users",
    "backup_database",
    "rotate_logs",
    "fetch_rates",
    "score_leads",
    "render_pdf",
    "ping",
    "aggregate_usage",
    "train_model",
)
#: The task of the "one task name" scenario, about 4% of the runs.
SCENARIO_TASK = TASK_NAMES[10]

_SEED_SQL = """
INSERT INTO {table} (
    id, name, priority, state, queued, start, "end", params,
    from_run_id, root_run_id, retry_attempt, error_type, error_message, tags,
    updated
)
SELECT
    id, name, priority, state::taskstate, queued, start, finish, params,
    from_run_id, root_run_id, retry_attempt, error_type, error_message, tags,
    coalesce(finish, start, queued)
FROM (
    SELECT
        id, name, priority, state, queued, params, from_run_id, root_run_id,
        retry_attempt, error_type, error_message, tags, start,
        CASE WHEN state NOT IN ('init', 'queued', 'running')
            THEN start + (50 + h % 30000) * interval '1 millisecond'
        END AS finish
    FROM (
        SELECT
            md5('run' || i) AS id,
            names[1 + t] AS name,
            CASE WHEN u3 < 0.9 THEN (ARRAY['high', 'medium', 'low'])[1 + t % 3]
                 ELSE (ARRAY['high', 'medium', 'low'])[1 + (h >> 8) % 3]
            END AS priority,
            state,
            queued,
            CASE WHEN state NOT IN ('init', 'queued')
                THEN queued + (h % 5000) * interval '1 millisecond'
            END AS start,
            jsonb_build_object(
                'user', 'u' || ((h >> 16) % 5000),
                'region', CASE WHEN u5 < 0.40 THEN 'eu' WHEN u5 < 0.75 THEN 'us'
                               WHEN u5 < 0.95 THEN 'ap' ELSE 'sa' END,
                'n', (h >> 32) % 100
            ) AS params,
            CASE WHEN u6 < 0.2 THEN md5('run' || greatest(i - 1 - h % 200, 0))
                 ELSE '' END AS from_run_id,
            CASE WHEN u6 < 0.2
                THEN md5('run' || greatest(i - 1 - h % 200 - (h >> 8) % 50, 0))
                ELSE '' END AS root_run_id,
            CASE WHEN u6 > 0.95 THEN 1 + (h >> 4) % 2 ELSE 0 END AS retry_attempt,
            CASE WHEN state = 'failure' THEN (ARRAY[
                'ValueError', 'TimeoutError', 'KeyError', 'ConnectionError'
            ])[1 + (h >> 12) % 4] END AS error_type,
            CASE WHEN state = 'failure'
                THEN 'report for u' || ((h >> 16) % 5000) || ' has no data'
            END AS error_message,
            CASE t % 4
                WHEN 0 THEN ARRAY['reports', 'billing']
                WHEN 1 THEN ARRAY['ops']
                WHEN 2 THEN ARRAY['pipeline']
                ELSE ARRAY[]::text[]
            END AS tags,
            h
        FROM (
            SELECT
                i, h, u3, u5, u6, names,
                least(19, floor(20 * power(u1, 1.5))::int) AS t,
                CASE WHEN u2 < 0.800 THEN 'success'
                     WHEN u2 < 0.880 THEN 'failure'
                     WHEN u2 < 0.910 THEN 'aborted'
                     WHEN u2 < 0.940 THEN 'rate_limited'
                     WHEN u2 < 0.950 THEN 'interrupted'
                     WHEN u2 < 0.970 THEN 'running'
                     WHEN u2 < 0.995 THEN 'queued'
                     ELSE 'init' END AS state,
                $1::timestamptz + (
                    (i / {block}) * $2::bigint
                    + (abs(hashint8extended(i, 8)) % k) * ($2::bigint / k)
                ) * interval '1 microsecond' AS queued
            FROM (
                SELECT
                    i,
                    abs(hashint8extended(i, 0)) AS h,
                    (abs(hashint8extended(i, 1)) % 1000003) / 1000003.0 AS u1,
                    (abs(hashint8extended(i, 2)) % 1000003) / 1000003.0 AS u2,
                    (abs(hashint8extended(i, 3)) % 1000003) / 1000003.0 AS u3,
                    (abs(hashint8extended(i, 5)) % 1000003) / 1000003.0 AS u5,
                    (abs(hashint8extended(i, 6)) % 1000003) / 1000003.0 AS u6,
                    1 + abs(hashint8extended(i / {block}, 7)) % 8 AS k,
                    $3::text[] AS names
                FROM generate_series(0::bigint, $4::bigint - 1) AS i
            ) AS hashed
        ) AS drawn
    ) AS rows
) AS runs
"""


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What seeding did."""

    table: str
    rows: int
    reused: bool
    seconds: float
    table_bytes: int
    total_bytes: int


def table_name_for(rows: int) -> str:
    """One table per size, so a quick and a full run keep both tables."""
    return f"runs_{rows}"


async def ensure_database(admin_dsn: str, database: str) -> None:
    """Create ``database`` on the server of ``admin_dsn`` if it is missing."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", database
        )
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


def _marker(rows: int) -> str:
    return f"gql_history bench seed v{SEED_VERSION} rows={rows}"


async def seed(dsn: str, rows: int, *, force: bool = False) -> SeedResult:
    """The table of ``rows`` runs, reused when an identical seed is present."""
    table_name = table_name_for(rows)
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        comment = await conn.fetchval(
            "SELECT obj_description(to_regclass($1), 'pg_class')", table_name
        )
        reused = comment == _marker(rows) and not force
        if not reused:
            await _load(dsn, conn, table_name, rows)
        table_bytes, total_bytes = await conn.fetchrow(
            "SELECT pg_table_size($1::regclass), pg_total_relation_size($1::regclass)",
            table_name,
        )
    finally:
        await conn.close()
    return SeedResult(
        table=table_name,
        rows=rows,
        reused=reused,
        seconds=time.perf_counter() - started,
        table_bytes=table_bytes,
        total_bytes=total_bytes,
    )


async def _load(dsn: str, conn: asyncpg.Connection, table_name: str, rows: int) -> None:
    await conn.execute(f'DROP TABLE IF EXISTS "{table_name}"')
    engine = create_engine(
        dsn,
        connect_args={"server_settings": {"maintenance_work_mem": "512MB"}},
    )
    store = HistoryStore(engine, history_table(sa.MetaData(), table_name))
    try:
        await store.create_tables()
        # build the secondary indexes after the load: drop, insert, recreate
        index_names = [index.name for index in all_indexes(store.table)]
        for name in index_names:
            await conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        blocks = -(-rows // BLOCK)
        step_us = WINDOW // timedelta(microseconds=1) // blocks
        await conn.execute(
            _SEED_SQL.format(table=f'"{table_name}"', block=BLOCK),
            WINDOW_END - WINDOW,
            step_us,
            list(TASK_NAMES),
            rows,
        )
        await store.create_tables()
    finally:
        await engine.dispose()
    await conn.execute(f'VACUUM (ANALYZE) "{table_name}"')
    await conn.execute(f"COMMENT ON TABLE \"{table_name}\" IS '{_marker(rows)}'")
