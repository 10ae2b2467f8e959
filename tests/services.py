"""Which PostgreSQL and Redis the tests use: configured, local, or embedded.

Unconfigured, the suite keeps to what it owns: a database of its own
(``gql_history_test``, created when missing) and Redis keys under a prefix of
its own, so that the usual local servers' other data is never touched.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from gql_history.cli.embedded import is_reachable

TEST_DATABASE = "gql_history_test"
LOCAL_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
DATA_DIR = Path(__file__).resolve().parent.parent / ".gql-history" / "tests"


def local_server() -> str | None:
    """The usual local PostgreSQL server, if it answers."""
    return LOCAL_SERVER_URL if is_reachable("127.0.0.1", 5432) else None


def redis_url() -> str | None:
    """``REDIS_URL`` if set, else the local server if it answers."""
    if url := os.environ.get("REDIS_URL"):
        return url
    return LOCAL_REDIS_URL if is_reachable("127.0.0.1", 6379) else None


def own_database(server_url: str) -> str:
    """The URL of the suite's own database on ``server_url``'s server, created
    when missing: the server's other databases are never written to."""
    url = make_url(server_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (TEST_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    return url.set(database=TEST_DATABASE).render_as_string(hide_password=False)


def own_broker(url: str) -> str:
    """``url`` with a broker name of this session's own: aio-fluid prefixes
    every key with it, so the suite clears only the keys it wrote."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}name=gql-history-test-{secrets.token_hex(4)}"


def clear_broker(url: str) -> None:
    """Delete the keys aio-fluid wrote under ``url``'s broker name, in its
    database: what worker processes of a test leave behind."""
    import redis
    from yarl import URL

    name = URL(url).query.get("name", "redis-task-broker")
    with redis.Redis.from_url(str(URL(url).with_query({}))) as client:
        keys = list(client.scan_iter(match=f"{{{name}}}-*"))
        if keys:
            client.delete(*keys)
