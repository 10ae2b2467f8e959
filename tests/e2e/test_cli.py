"""The ``gql-history`` command: each command, and its errors as a user sees
them from the installed console script."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from fluid.db import CrudDB
from fluid.scheduler import TaskState
from fluid.scheduler.db import task_meta
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.printer import print_schema

from gql_history import TaskHistoryPlugin
from gql_history.cli import cli
from gql_history.schema import schema
from tests.factories import run_record
from tests.servers import (
    COMMAND,
    ROOT,
    command_env,
    interrupt,
    run_command,
    running_command,
    wait_for_output,
)

COMMANDS = ["create-tables", "demo", "export-schema", "prune", "serve", "upgrade"]


async def invoke(*args: str) -> Result:
    """Run the command in this process (in a thread: it runs its own loop)."""
    return await asyncio.to_thread(
        CliRunner().invoke, cli, list(args), env=command_env(), catch_exceptions=False
    )


async def drop(engine: AsyncEngine, table: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))


async def run_ids(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text(f'SELECT id FROM "{table}"'))
        return set(rows.scalars())


@pytest.fixture(scope="module")
async def seeded(database_url: str, fresh_table: str) -> str:
    """The module's table, with one recent run and old ones to prune."""
    now = datetime.now(UTC)
    plugin = TaskHistoryPlugin(database_url, table_name=fresh_table)
    await plugin.create_tables()
    await plugin.store.upsert(
        [
            run_record("recent", name="ping", state=TaskState.success, queued=now),
            *(
                run_record(
                    f"old-{i}",
                    state=TaskState.success,
                    queued=now - timedelta(days=40, minutes=i),
                )
                for i in range(3)
            ),
            run_record(
                "old-failed",
                state=TaskState.failure,
                queued=now - timedelta(days=50),
            ),
        ]
    )
    await plugin.close()
    return fresh_table


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


async def test_cli_help_describes_every_command() -> None:
    result = await invoke("--help")
    assert result.exit_code == 0
    commands = result.stdout.split("Commands:\n")[1].splitlines()
    listed = [line.split()[0] for line in commands]
    assert listed == COMMANDS
    for command in COMMANDS:
        result = await invoke(command, "--help")
        assert (result.exit_code, "--debug" in result.stdout) == (0, True)


def test_cli_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gql_history", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert (result.returncode, result.stdout.splitlines()[0]) == (
        0,
        "Usage: gql-history [OPTIONS] COMMAND [ARGS]...",
    )


async def test_cli_export_schema_prints_the_sdl(tmp_path: Path) -> None:
    sdl = print_schema(schema) + "\n"
    result = await invoke("export-schema")
    assert (result.exit_code, result.stdout) == (0, sdl)
    output = tmp_path / "schema.graphql"
    result = await invoke("export-schema", "-o", str(output))
    assert (result.exit_code, result.stdout, output.read_text()) == (0, "", sdl)


async def test_cli_create_tables_is_idempotent(
    database_url: str, engine: AsyncEngine
) -> None:
    table = "runs_cli_created"
    await drop(engine, table)
    args = ("create-tables", "--database-url", database_url, "--table-name", table)
    for _ in range(2):
        result = await invoke(*args)
        assert (result.exit_code, result.stdout) == (
            0,
            f"Table {table} is ready in {database_url}\n",
        )
    assert await run_ids(engine, table) == set()


@pytest.fixture
async def legacy_table(database_url: str) -> AsyncIterator[str]:
    """A table as aio-fluid's TaskDbPlugin creates it."""
    db = CrudDB(database_url.replace("postgresql://", "postgresql+asyncpg://"))
    task_meta(db.metadata, table_name="runs_cli_legacy")
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("DROP TABLE IF EXISTS runs_cli_legacy"))
        await conn.run_sync(db.metadata.create_all)
    yield "runs_cli_legacy"
    await db.engine.dispose()


async def test_cli_upgrade_adds_columns_to_a_taskdbplugin_table(
    database_url: str, legacy_table: str
) -> None:
    args = ("upgrade", "--database-url", database_url, "--table-name", legacy_table)
    first, second = await invoke(*args), await invoke(*args)
    assert [(r.exit_code, r.stdout) for r in (first, second)] == [
        (
            0,
            f"Added to {legacy_table}: from_run_id, root_run_id, retry_attempt, "
            "error_type, error_message, tags, updated, worker, xact_id, "
            "xact_horizon\n",
        ),
        (0, f"Table {legacy_table} is up to date\n"),
    ]


async def test_cli_upgrade_creates_a_missing_table_and_says_so(
    database_url: str, engine: AsyncEngine
) -> None:
    table = "runs_cli_upgraded"
    await drop(engine, table)
    args = ("upgrade", "--database-url", database_url, "--table-name", table)
    first, second = await invoke(*args), await invoke(*args)
    assert [(r.exit_code, r.stdout) for r in (first, second)] == [
        (0, f"Created table {table} in {database_url}\n"),
        (0, f"Table {table} is up to date\n"),
    ]
    assert await run_ids(engine, table) == set()


def prune_args(database_url: str, table: str, *more: str) -> list[str]:
    return [
        *("prune", "--older-than", "30d", "--state", "SUCCESS"),
        *("--database-url", database_url, "--table-name", table, *more),
    ]


async def test_cli_prune_dry_run_counts_and_deletes_nothing(
    database_url: str, engine: AsyncEngine, seeded: str
) -> None:
    before = await run_ids(engine, seeded)
    result = await invoke(*prune_args(database_url, seeded, "--dry-run"))
    assert result.exit_code == 0
    assert result.stdout.startswith("Would delete 3 runs queued before ")
    assert await run_ids(engine, seeded) == before


async def test_cli_prune_on_a_terminal_asks_first(
    database_url: str, engine: AsyncEngine, seeded: str
) -> None:
    before = await run_ids(engine, seeded)
    command = [str(COMMAND), *prune_args(database_url, seeded)]
    answered = await asyncio.to_thread(run_on_terminal, command, answer=b"n\n")
    assert "Delete 3 runs queued before " in answered
    assert answered.rstrip().endswith("Deleted nothing")
    assert await run_ids(engine, seeded) == before


def run_on_terminal(command: list[str], *, answer: bytes) -> str:
    """Run ``command`` on a pseudo-terminal, type ``answer``; return its output."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command, stdin=terminal, stdout=terminal, stderr=terminal, env=command_env()
    )
    os.close(terminal)
    os.write(controller, answer)
    printed = b""
    with contextlib.suppress(OSError):  # EIO once the command has exited
        while chunk := os.read(controller, 4096):
            printed += chunk
    os.close(controller)
    assert process.wait(30) == 0, printed
    return printed.decode()


async def test_cli_prune_deletes_old_runs_and_prints_the_count(
    database_url: str, engine: AsyncEngine, seeded: str
) -> None:
    result = await invoke(
        "prune",
        "--older-than",
        "30d",
        "--state",
        "SUCCESS",
        "--batch-size",
        "2",
        "--database-url",
        database_url,
        "--table-name",
        seeded,
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("Deleted 3 runs queued before ")
    assert result.stdout.endswith(f" from {seeded}\n")
    assert await run_ids(engine, seeded) == {"recent", "old-failed"}


async def test_cli_serve_answers_graphql_and_stops_on_sigint(
    database_url: str, seeded: str
) -> None:
    args = ["serve", "--database-url", database_url, "--table-name", seeded]
    with running_command([*args, "--port", "0"], ready="GraphiQL at ") as (
        process,
        output,
    ):
        base = output.split("GraphiQL at ")[1].split("/tasks-graphql")[0]
        async with httpx.AsyncClient(base_url=base) as client:
            response = await client.post(
                "/tasks-graphql",
                json={"query": '{ run(id: "recent") { runId task state } }'},
            )
        assert response.json() == {
            "data": {"run": {"runId": "recent", "task": "ping", "state": "SUCCESS"}}
        }
        took = interrupt(process)
    assert (process.returncode, took < 15) == (0, True)


def test_cli_serve_second_sigint_while_stopping_prints_no_traceback(
    database_url: str, seeded: str
) -> None:
    args = ["serve", "--database-url", database_url, "--table-name", seeded]
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            [str(COMMAND), *args, "--port", "0"],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            env=command_env(),
            start_new_session=True,
        )
        wait_for_output(process, output, "GraphiQL at ", timeout=60)
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
        interrupt(process)
        output.seek(0)
        printed = output.read()
    assert (process.returncode, "Traceback" in printed) == (0, False), printed


async def test_cli_errors_are_one_line_without_a_traceback(
    database_url: str, seeded: str, closed_port: int, busy_port: int
) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{closed_port}/test"
    cases = {
        "unreachable database": ["serve", "--database-url", unreachable, "--port", "0"],
        "unsupported database": ["create-tables", "--database-url", "mysql://u@h/db"],
        "not a url": ["upgrade", "--database-url", "not a url"],
        "no database": ["prune", "--older-than", "30d"],
        "bad duration": ["prune", "--older-than", "soon"],
        "duration too long": ["prune", "--older-than", "99999999d"],
        "unwritable output": ["export-schema", "-o", "/nonexistent/dir/x.graphql"],
        "missing table": [
            *("serve", "--database-url", database_url),
            *("--table-name", "runs_cli_missing", "--port", "0"),
        ],
        "busy port": [
            *("serve", "--database-url", database_url, "--table-name", seeded),
            *("--port", str(busy_port)),
        ],
        "demo with unreachable servers": [
            *("demo", "--database-url", unreachable),
            *("--redis-url", f"redis://127.0.0.1:{closed_port}/0", "--port", "0"),
        ],
    }
    results = await asyncio.gather(
        *(asyncio.to_thread(run_command, args) for args in cases.values())
    )
    outcomes = {
        case: (result.returncode, result.stdout, result.stderr)
        for case, result in zip(cases, results, strict=True)
    }
    refused = f"Error: cannot connect to {unreachable}: Connection refused\n"
    assert outcomes == {
        "unreachable database": (1, "", refused),
        "unsupported database": (
            1,
            "",
            "Error: unsupported database 'mysql': gql_history needs PostgreSQL, "
            "e.g. postgresql://user@host:port/dbname\n",
        ),
        "not a url": (
            1,
            "",
            "Error: not a database URL: expected postgresql://user@host:port/dbname\n",
        ),
        "no database": (
            2,
            "",
            "Error: no database: pass --database-url or set DATABASE_URL "
            "(see 'gql-history prune --help')\n",
        ),
        "bad duration": (
            2,
            "",
            "Error: Invalid value for '--older-than': 'soon' is not a duration "
            "such as 30d, 12h or 90m (see 'gql-history prune --help')\n",
        ),
        "duration too long": (
            2,
            "",
            "Error: Invalid value for '--older-than': '99999999d' reaches back "
            "before the year 1 (see 'gql-history prune --help')\n",
        ),
        "unwritable output": (
            1,
            "",
            "Error: cannot write /nonexistent/dir/x.graphql: "
            "No such file or directory\n",
        ),
        "missing table": (
            1,
            "",
            f"Error: no table 'runs_cli_missing' in {database_url}: "
            "create it with `gql-history create-tables`\n",
        ),
        "busy port": (
            1,
            "",
            f"Error: cannot listen on 127.0.0.1:{busy_port}: "
            "Address already in use (choose another with --port)\n",
        ),
        "demo with unreachable servers": (1, "", refused),
    }


def test_cli_debug_shows_the_traceback() -> None:
    result = run_command(["--debug", "create-tables", "--database-url", "mysql://h"])
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.endswith(
        "gql_history.db.engine.InvalidDatabaseURLError: unsupported database 'mysql': "
        "gql_history needs PostgreSQL, e.g. postgresql://user@host:port/dbname\n"
    )


def test_cli_help_loads_none_of_the_heavy_libraries() -> None:
    """What keeps ``--help`` and ``--version`` at a fraction of a second: an
    import here of aio-fluid, SQLAlchemy, Strawberry or FastAPI costs seconds."""
    heavy = ("fluid", "sqlalchemy", "strawberry", "fastapi", "asyncpg", "pydantic")
    script = (
        "import sys\n"
        "from gql_history.cli import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='gql-history')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert (result.returncode, result.stdout.splitlines()[-1]) == (0, "[]")
