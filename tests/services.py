"""Which PostgreSQL and Redis the tests use: configured, local, or embedded."""

from __future__ import annotations

import os
from pathlib import Path

from gql_history.cli.embedded import is_reachable

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/3"
DATA_DIR = Path(__file__).resolve().parent.parent / ".gql-history" / "tests"


def database_url() -> str | None:
    """``DATABASE_URL`` if set, else the local server if it answers."""
    if url := os.environ.get("DATABASE_URL"):
        return url
    return LOCAL_DATABASE_URL if is_reachable("127.0.0.1", 5432) else None


def redis_url() -> str | None:
    """``REDIS_URL`` if set, else the local server if it answers."""
    if url := os.environ.get("REDIS_URL"):
        return url
    return LOCAL_REDIS_URL if is_reachable("127.0.0.1", 6379) else None
