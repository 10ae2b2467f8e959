"""The suite itself, run with its defaults, leaves the local servers' other
data alone: it writes only to its own database and its own Redis keys."""

from __future__ import annotations

import secrets
import subprocess
import sys

import psycopg
import pytest
import redis

from tests import services
from tests.servers import ROOT, command_env

pytestmark = pytest.mark.skipif(
    services.local_server() is None or services.redis_url() is None,
    reason="needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379",
)
#: A module that drops and creates ``runs_plugin`` and runs a task manager.
MODULE = "tests/integration/test_plugin.py"
#: Where the suite wrote before it had a database and keys of its own.
OTHERS_TABLE = "runs_plugin"
OTHERS_REDIS_DBS = (0, 3)


def test_suite_defaults_leave_others_tables_and_keys_untouched() -> None:
    key = f"someone-else-{secrets.token_hex(4)}"
    with psycopg.connect(services.LOCAL_SERVER_URL, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass(%s)", (OTHERS_TABLE,)).fetchone() != (
            None,
        ):
            pytest.skip(f"{OTHERS_TABLE} already exists in the postgres database")
        conn.execute(f"CREATE TABLE {OTHERS_TABLE} (id text)")
        conn.execute(f"INSERT INTO {OTHERS_TABLE} VALUES ('theirs')")
        clients = [redis.Redis(port=6379, db=db) for db in OTHERS_REDIS_DBS]
        try:
            for client in clients:
                client.set(key, "theirs", ex=600)
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    MODULE,
                ],
                cwd=ROOT,
                env=command_env(),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert run.returncode == 0, run.stdout[-2000:]
            rows = conn.execute(f"SELECT id FROM {OTHERS_TABLE}").fetchall()
            assert rows == [("theirs",)]
            assert [client.get(key) for client in clients] == [b"theirs", b"theirs"]
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {OTHERS_TABLE}")
            for client in clients:
                client.delete(key)
                client.close()
