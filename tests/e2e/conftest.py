from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fluid.scheduler import TaskState

from gql_history import TaskHistoryPlugin
from tests.factories import T0, run_record
from tests.servers import running_command


@dataclass(frozen=True)
class Served:
    """A running ``gql-history serve``: where it listens, what it logs."""

    base: str
    log: Path
    plugin: TaskHistoryPlugin
    """Writes runs into the table it serves (from the test's event loop)."""

    @property
    def graphql(self) -> str:
        return f"{self.base}/tasks-graphql"

    @property
    def websocket(self) -> str:
        return "ws" + self.graphql.removeprefix("http")

    @property
    def rest(self) -> str:
        return f"{self.base}/tasks-history"

    def output(self) -> str:
        return self.log.read_text()


def seed_runs() -> list[object]:
    """A root run, two children and a grandchild, and a failed run."""
    lineage = {"from_run_id": "h-root", "root_run_id": "h-root"}
    return [
        run_record("h-root", name="fan_out", state=TaskState.success),
        run_record("h-child-1", queued=T0 + timedelta(minutes=1), **lineage),
        run_record("h-child-2", queued=T0 + timedelta(minutes=2), **lineage),
        run_record(
            "h-grandchild",
            queued=T0 + timedelta(minutes=3),
            from_run_id="h-child-1",
            root_run_id="h-root",
        ),
        run_record(
            "h-failed",
            name="report",
            state=TaskState.failure,
            params={"user": "u1"},
            queued=T0 + timedelta(minutes=4),
        ),
    ]


@pytest.fixture(scope="module")
async def served_plugin(database_url: str, fresh_table: str) -> TaskHistoryPlugin:
    plugin = TaskHistoryPlugin(database_url, table_name=fresh_table)
    await plugin.create_tables()
    await plugin.store.upsert(seed_runs())  # type: ignore[arg-type]
    return plugin


@pytest.fixture(scope="module")
def served(
    database_url: str,
    fresh_table: str,
    served_plugin: TaskHistoryPlugin,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """``gql-history serve`` of the seeded table on a free port, its output
    in a file; no test may leave a traceback there."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [
        "serve",
        "--database-url",
        database_url,
        "--table-name",
        fresh_table,
        "--port",
        "0",
    ]
    with running_command(command, ready="GraphiQL at ", log=log) as (_, output):
        base = output.split("GraphiQL at ", 1)[1].split()[0].rstrip(",")
        yield Served(base.removesuffix("/tasks-graphql"), log, served_plugin)
    printed = log.read_text()
    assert "Traceback" not in printed, printed
    assert " ERROR " not in printed, printed
