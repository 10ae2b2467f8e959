"""The typed clients, generated from the schema and examples/queries, against
a live ``gql-history serve`` over seeded runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fluid.scheduler import TaskState
from graphql import parse, validate
from strawberry.printer import print_schema

from examples.clients import generate
from gql_history import TaskHistoryPlugin
from gql_history.schema import schema
from tests.factories import T0, run_record
from tests.servers import running_command

QUERIES = generate.ROOT / "examples" / "queries"

#: What both examples print for the seeded runs (but for the scalars' types).
EXPECTED = {
    "total": 7,
    "firstPage": ["c-grandchild", "c-child-2"],
    "nextPage": ["c-child-1", "c-root"],
    "nextHasPreviousPage": True,
    "previousPage": ["c-grandchild", "c-child-2"],
    "failures": [
        {
            "runId": "c-fail-u1",
            "task": "report",
            "error": ["ValueError", "report for u1 has no data"],
        }
    ],
    "run": {
        "runId": "c-child-1",
        "task": "fan_out",
        "state": "SUCCESS",
        "queued": "2026-01-01T00:11:00+00:00",
        "params": {"children": 1},
        "parent": "c-root",
        "root": "c-root",
        "children": ["c-grandchild"],
        "childCount": 1,
    },
}


def _seed() -> list[Any]:
    def at(minutes: int) -> Any:
        return T0 + timedelta(minutes=minutes)

    failed = {"state": TaskState.failure, "error_type": "ValueError"}
    lineage = {"from_run_id": "c-root", "root_run_id": "c-root"}
    return [
        run_record("c-ok", name="ping", state=TaskState.success, queued=at(1)),
        run_record(
            "c-fail-u2",
            name="report",
            queued=at(4),
            params={"user": "u2", "region": "us"},
            error_message="report for u2 has no data",
            **failed,
        ),
        run_record(
            "c-fail-u1",
            name="report",
            queued=at(5),
            params={"user": "u1", "region": "eu"},
            error_message="report for u1 has no data",
            **failed,
        ),
        run_record(
            "c-root",
            name="fan_out",
            state=TaskState.success,
            queued=at(10),
            params={"children": 2},
        ),
        run_record(
            "c-child-1",
            name="fan_out",
            state=TaskState.success,
            queued=at(11),
            params={"children": 1},
            **lineage,
        ),
        run_record(
            "c-child-2",
            name="add",
            state=TaskState.success,
            queued=at(12),
            params={"a": 2, "b": 4},
            **lineage,
        ),
        run_record(
            "c-grandchild",
            name="add",
            state=TaskState.success,
            queued=at(13),
            params={"a": 1, "b": 2},
            from_run_id="c-child-1",
            root_run_id="c-root",
        ),
    ]


@pytest.fixture(scope="module")
async def seeded(database_url: str, fresh_table: str) -> str:
    plugin = TaskHistoryPlugin(database_url, table_name=fresh_table)
    await plugin.create_tables()
    await plugin.store.upsert(_seed())
    await plugin.close()
    return fresh_table


@contextmanager
def serving(database_url: str, table_name: str, *options: str) -> Iterator[str]:
    """``gql-history serve`` of ``table_name`` on a free port; its GraphQL URL."""
    command = ["serve", "--database-url", database_url, "--table-name", table_name]
    command += ["--port", "0", *options]
    with running_command(command, ready="GraphiQL at ") as (_, output):
        yield output.split("GraphiQL at ", 1)[1].split()[0].rstrip(",")


@pytest.fixture(scope="module")
def graphql_url(database_url: str, seeded: str) -> Iterator[str]:
    """``gql-history serve`` of the seeded table, on a free port."""
    with serving(database_url, seeded) as url:
        yield url


@pytest.fixture(scope="module")
def schema_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The schema the code prints now, as ``gql-history export-schema`` does."""
    path = tmp_path_factory.mktemp("schema") / "schema.graphql"
    path.write_text(print_schema(schema) + "\n")
    return path


def test_clients_queries_are_valid_against_the_schema() -> None:
    documents = sorted(QUERIES.glob("*.graphql"))
    assert [path.name for path in documents] == [
        "fragments.graphql",
        "history_page.graphql",
        "run_details.graphql",
        "tasks.graphql",
    ]
    document = parse("\n".join(path.read_text() for path in documents))
    assert validate(schema._schema, document) == []


def test_clients_python_client_reads_the_history(
    schema_file: Path, graphql_url: str
) -> None:
    try:
        generate.python_client(schema_file)
    except generate.ToolUnavailableError as exc:
        pytest.skip(str(exc))
    summary = _run_json(
        [
            sys.executable,
            generate.PYTHON_CLIENT / "example.py",
            graphql_url,
            "c-child-1",
        ]
    )
    assert summary == EXPECTED | {
        "scalarTypes": {"queued": "datetime", "params": "dict"}
    }
    without_run_id = subprocess.run(
        [sys.executable, generate.PYTHON_CLIENT / "example.py", graphql_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (without_run_id.returncode, without_run_id.stderr) == (
        1,
        "usage: python example.py GRAPHQL_URL RUN_ID\n",
    )


@pytest.fixture(scope="module")
def typescript_example(schema_file: Path) -> list[str]:
    """The command running the TypeScript example, generated and compiled."""
    try:
        generate.typescript_client(schema_file)
    except generate.ToolUnavailableError as exc:
        pytest.skip(str(exc))
    node = shutil.which("node")
    assert node is not None, "npm is installed, so node should be"
    return [node, str(generate.TYPESCRIPT_CLIENT / "dist" / "src" / "example.js")]


def test_clients_typescript_client_reads_the_history(
    typescript_example: list[str], graphql_url: str
) -> None:
    summary = _run_json([*typescript_example, graphql_url, "c-child-1"])
    assert summary == EXPECTED | {
        "scalarTypes": {"queued": "string", "params": "object"}
    }


def test_clients_typescript_client_runs_against_an_allow_list(
    typescript_example: list[str], database_url: str, seeded: str
) -> None:
    """With the manifest graphql-codegen wrote, the server runs the example's
    operations by hash (over GET) and refuses the same ones sent whole: their
    text differs from the listed documents."""
    manifest = generate.TYPESCRIPT_CLIENT / "generated" / "persisted-documents.json"
    with serving(database_url, seeded, "--persisted-documents", str(manifest)) as url:
        summary = _run_json([*typescript_example, url, "c-child-1", "--persisted"])
        refused = subprocess.run(
            [*typescript_example, url, "c-child-1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert summary == EXPECTED | {
        "scalarTypes": {"queued": "string", "params": "object"}
    }
    assert refused.returncode != 0
    assert "(QUERY_NOT_IN_SAFELIST)" in refused.stderr


def test_clients_apollo_client_uses_automatic_persisted_queries(
    typescript_example: list[str], graphql_url: str
) -> None:
    """Apollo Client's PersistedQueryLink: a hash unknown to the server, the
    document sent once with it, then the hash alone (over GET)."""
    node, example = typescript_example
    apq = str(Path(example).with_name("apq.js"))
    assert _run_json([node, apq, graphql_url, "c-child-1"]) == {
        "read": ["c-child-1", "c-child-1"],
        "sent": [
            {"method": "GET", "query": False, "hash": True},
            {"method": "POST", "query": True, "hash": True},
            {"method": "GET", "query": False, "hash": True},
        ],
    }


def _run_json(args: list[Any]) -> Any:
    result = subprocess.run(
        [str(arg) for arg in args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
