"""The printed schema: committed, documented, and true to the contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    specified_scalar_types,
)
from graphql.pyutils import Undefined

from gql_history.schema import build_schema, schema

SDL = Path(__file__).resolve().parents[3] / "schema.graphql"
REGENERATE = (
    ".venv/bin/strawberry export-schema gql_history.schema:schema "
    "--output schema.graphql"
)


def test_schema_graphql_matches_the_schema() -> None:
    assert SDL.read_text() == str(schema) + "\n", f"regenerate it: {REGENERATE}"


def test_schema_describes_every_type_field_argument_and_enum_value() -> None:
    missing = []
    for name, kind in schema._schema.type_map.items():
        if name.startswith("__") or name in specified_scalar_types:
            continue
        if not kind.description:
            missing.append(name)
        if isinstance(kind, GraphQLEnumType):
            missing += [
                f"{name}.{v}" for v, e in kind.values.items() if not e.description
            ]
        if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in kind.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                missing += [
                    f"{name}.{field_name}({arg})"
                    for arg, value in field.args.items()
                    if not value.description
                ]
        if isinstance(kind, GraphQLInputObjectType):
            missing += [
                f"{name}.{f}"
                for f, value in kind.fields.items()
                if not value.description
            ]
    assert missing == []


def test_schema_enum_values_are_upper_case() -> None:
    enums = {
        name: list(kind.values)
        for name, kind in schema._schema.type_map.items()
        if isinstance(kind, GraphQLEnumType) and not name.startswith("__")
    }
    assert enums == {
        "StatsBucket": ["MINUTE", "HOUR", "DAY"],
        "TaskPriority": ["HIGH", "MEDIUM", "LOW"],
        "TaskRunOrder": [
            "QUEUED_DESC",
            "QUEUED_ASC",
            "START_DESC",
            "START_ASC",
            "END_DESC",
            "END_ASC",
            "DURATION_DESC",
            "DURATION_ASC",
        ],
        "TaskState": [
            "INIT",
            "QUEUED",
            "RUNNING",
            "SUCCESS",
            "FAILURE",
            "ABORTED",
            "RATE_LIMITED",
            "INTERRUPTED",
        ],
    }


def signatures(type_name: str) -> dict[str, str]:
    """``field(arg: Type = default, ...): Type`` for each field of a type."""
    kind = schema._schema.type_map[type_name]
    assert isinstance(kind, GraphQLObjectType | GraphQLInputObjectType)
    found = {}
    for name, field in kind.fields.items():
        args = getattr(field, "args", {})
        rendered = ", ".join(
            f"{arg}: {value.type}"
            + (
                ""
                if value.default_value is Undefined
                else f" = {value.default_value.name}"
            )
            for arg, value in args.items()
        )
        found[name] = (f"({rendered})" if args else "") + f": {field.type}"
    return found


def test_schema_keeps_the_contract_of_the_issue() -> None:
    assert signatures("Query") == {
        "runs": "(filter: TaskRunFilter, orderBy: TaskRunOrder = QUEUED_DESC, "
        "first: Int, after: String, last: Int, before: String): TaskRunConnection!",
        "run": "(id: String!): TaskRun",
        "node": "(id: ID!): Node",
        "nodes": "(ids: [ID!]!): [Node]!",
        "tasks": ": [TaskInfo!]!",
        "runStats": "(filter: TaskRunFilter, bucket: StatsBucket): TaskRunStats!",
        "taskNames": "(filter: TaskRunFilter): [TaskCount!]!",
        "taskTags": "(filter: TaskRunFilter): [TagCount!]!",
    }
    assert signatures("Subscription") == {
        "runUpdates": (
            "(filter: TaskRunFilter, after: String, since: DateTime): TaskRun!"
        ),
    }
    assert signatures("TaskRunStats") == CONTRACT_STATS
    run = signatures("TaskRun")
    assert {name: run[name] for name in CONTRACT_RUN} == CONTRACT_RUN
    task_run = schema._schema.type_map["TaskRun"]
    assert isinstance(task_run, GraphQLObjectType)
    assert [kind.name for kind in task_run.interfaces] == ["Node"]
    connection = signatures("TaskRunConnection")
    assert connection == {
        "pageInfo": ": PageInfo!",
        "edges": ": [TaskRunEdge!]!",
        "totalCount": ": Int!",
        "approximateCount": ": Int!",
        "countUpTo": "(limit: Int!): Int!",
    }
    run_filter = signatures("TaskRunFilter")
    assert {name: run_filter[name] for name in CONTRACT_FILTER} == CONTRACT_FILTER
    info = signatures("TaskInfo")
    assert {name: info[name] for name in CONTRACT_INFO} == CONTRACT_INFO
    assert isinstance(schema._schema.type_map["DateTime"], GraphQLScalarType)
    assert isinstance(schema._schema.type_map["JSON"], GraphQLScalarType)


CONTRACT_RUN = {
    "id": ": ID!",
    "runId": ": String!",
    "task": ": String!",
    "priority": ": TaskPriority!",
    "state": ": TaskState!",
    "queued": ": DateTime!",
    "start": ": DateTime",
    "end": ": DateTime",
    "duration": ": Float",
    "params": ": JSON!",
    "retryAttempt": ": Int",
    "error": ": TaskRunError",
    "parent": ": TaskRun",
    "root": ": TaskRun",
    "children": "(first: Int, after: String, last: Int, before: String)"
    ": TaskRunConnection!",
    "updated": ": DateTime",
}
CONTRACT_STATS = {
    "bucket": ": StatsBucket!",
    "windowStart": ": DateTime!",
    "windowEnd": ": DateTime!",
    "total": ": Int!",
    "byState": ": [StateCount!]!",
    "byTask": ": [TaskCount!]!",
    "duration": ": DurationStats!",
    "series": ": [StatsPoint!]!",
}
CONTRACT_FILTER = {
    "task": ": [String!]",
    "state": ": [TaskState!]",
    "priority": ": [TaskPriority!]",
    "queuedAfter": ": DateTime",
    "queuedBefore": ": DateTime",
    "params": ": JSON",
    "tags": ": [String!]",
    "and": ": [TaskRunFilter!]",
    "or": ": [TaskRunFilter!]",
    "not": ": TaskRunFilter",
}
CONTRACT_INFO = {
    "name": ": String!",
    "description": ": String!",
    "tags": ": [String!]!",
    "priority": ": TaskPriority!",
    "schedule": ": String",
}


def test_build_schema_with_default_limits_is_the_default_schema() -> None:
    assert build_schema() is schema
    assert str(build_schema()) == str(schema)


def test_importing_gql_history_leaves_strawberry_unloaded() -> None:
    code = "import sys, gql_history; print('strawberry' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
