"""The read scenarios and how each target asks for them.

Every scenario is a page of 100 runs with all their scalar fields (one run
for ``by_id``), asked for in the way each target offers: raw SQL for the
floor, ``GET /tasks-history`` for the REST apps, ``POST /tasks-graphql``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from fluid import settings as fluid_settings
from fluid.db.cursor import Cursor, CursorEntry

from gql_history.core.cursor import CursorCodec, Position
from gql_history.core.paging import RunOrder
from gql_history.core.records import RUN_FIELDS
from gql_history.core.settings import default_cursor_secret

from .seed import SCENARIO_TASK

PAGE = 100
#: The scenarios every target serves, aio-fluid's TaskDbPlugin included.
COMMON = ("newest", "task", "failure", "params", "deep", "by_id")
#: Orders, filters and counts only gql_history has: the peer is not asked;
#: the counts are GraphQL's only (and the floor's).
OURS = ("by_end", "slowest", "started_asc", "within", "error", "search")
COUNTS = ("approx_count", "count_up_to")
SCENARIOS = (*COMMON, *OURS, *COUNTS)
#: gql_history's orders of the order scenarios.
SCENARIO_ORDERS = {
    "by_end": "END_DESC",
    "slowest": "DURATION_DESC",
    "started_asc": "START_ASC",
}
SQL_ORDERS = {
    "by_end": "coalesce(\"end\", '-infinity'::timestamptz) DESC, id DESC",
    "slowest": "coalesce(\"end\" - start, '-178000000 years'::interval) DESC, id DESC",
    "started_asc": "coalesce(start, 'infinity'::timestamptz) ASC, id ASC",
}
ERROR_TEXT = "u42 has"
SEARCH_TEXT = "render"
COUNT_LIMIT = 1000
DESCRIPTIONS = {
    "newest": "newest 100, no filter",
    "task": f"task = {SCENARIO_TASK}",
    "failure": "state = failure",
    "params": 'params @> {"region": "eu"}',
    "deep": "page ~500,000 runs deep, by cursor",
    "by_id": "one run by id",
    "by_end": "newest 100 by end (END_DESC)",
    "slowest": "slowest 100 (DURATION_DESC)",
    "started_asc": "earliest started 100 (START_ASC)",
    "within": "queuedWithin: the window's last day, on now()",
    "error": f"errorContains {ERROR_TEXT!r} (trigram)",
    "search": f"search {SEARCH_TEXT!r} (trigram)",
    "approx_count": "approximateCount, no filter",
    "count_up_to": f"countUpTo({COUNT_LIMIT}), state = failure",
}


def serves(target: str, scenario: str) -> bool:
    """Whether ``target`` answers ``scenario``."""
    if scenario in COMMON or target == "floor":
        return True
    if target == "peer":
        return False
    return scenario in OURS or target.startswith("ours-graphql")


PARAMS_FILTER = {"region": "eu"}


@dataclass(frozen=True, slots=True)
class Fixtures:
    """Values the scenarios need from the seeded table."""

    table: str
    depth: int
    deep: Position
    run_id: str
    within: str = "P1D"
    """An ISO 8601 duration reaching from now to the window's last day."""


async def load_fixtures(conn: asyncpg.Connection, table: str, rows: int) -> Fixtures:
    """The deep position (``depth`` runs from the newest) and a run id."""
    depth = min(500_000, rows // 2)
    row = await conn.fetchrow(
        f'SELECT queued, id FROM "{table}" ORDER BY queued DESC, id DESC '
        "OFFSET $1 LIMIT 1",
        depth - 1,
    )
    assert row is not None, f"{table} has fewer than {depth} rows"
    latest = await conn.fetchval(f'SELECT now() - max(queued) FROM "{table}"')
    within = f"P{latest.days + 1}D"
    return Fixtures(table, depth, Position(row["queued"], row["id"]), row["id"], within)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request of a scenario."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None


# raw SQL floor

_COLUMNS = ", ".join(f'"{name}"' for name in RUN_FIELDS)


def floor_query(scenario: str, fx: Fixtures) -> tuple[str, list[Any]]:
    """The fastest SQL for the scenario: its page (plus one row) in one select."""
    select = f'SELECT {_COLUMNS} FROM "{fx.table}"'
    order = f"ORDER BY queued DESC, id DESC LIMIT {PAGE + 1}"
    match scenario:
        case "newest":
            return f"{select} {order}", []
        case "task":
            return f"{select} WHERE name = $1 {order}", [SCENARIO_TASK]
        case "failure":
            return f"{select} WHERE state = 'failure' {order}", []
        case "params":
            return f"{select} WHERE params @> $1::jsonb {order}", [
                json.dumps(PARAMS_FILTER)
            ]
        case "deep":
            return f"{select} WHERE (queued, id) < ($1, $2) {order}", [
                fx.deep.key,
                fx.deep.id,
            ]
        case "by_id":
            return f"{select} WHERE id = $1", [fx.run_id]
        case "by_end" | "slowest" | "started_asc":
            limit = f"LIMIT {PAGE + 1}"
            return f"{select} ORDER BY {SQL_ORDERS[scenario]} {limit}", []
        case "within":
            where = "WHERE queued >= now() - $1::text::interval"
            return f"{select} {where} {order}", [fx.within]
        case "error":
            return f"{select} WHERE error_message ILIKE $1 {order}", [f"%{ERROR_TEXT}%"]
        case "search":
            where = "WHERE name ILIKE $1 OR id LIKE $2 OR error_message ILIKE $1"
            return f"{select} {where} {order}", [f"%{SEARCH_TEXT}%", f"{SEARCH_TEXT}%"]
        case "approx_count":
            return f'EXPLAIN (FORMAT JSON) SELECT 1 FROM "{fx.table}"', []
        case "count_up_to":
            inner = f"SELECT 1 FROM \"{fx.table}\" WHERE state = 'failure'"
            return f"SELECT count(*) FROM ({inner} LIMIT {COUNT_LIMIT}) s", []
    raise ValueError(scenario)


# REST, aio-fluid's TaskDbPlugin and ours share the routes and parameters


def rest_request(target: str, scenario: str, fx: Fixtures) -> HttpRequest:
    """``GET /tasks-history`` (or ``/tasks-history/{id}``) for the scenario."""
    base = {"limit": PAGE}
    match scenario:
        case "newest":
            return HttpRequest("GET", "/tasks-history", base)
        case "task":
            return HttpRequest("GET", "/tasks-history", base | {"task": SCENARIO_TASK})
        case "failure":
            return HttpRequest("GET", "/tasks-history", base | {"state": "failure"})
        case "params":
            params = base | {"params": json.dumps(PARAMS_FILTER)}
            return HttpRequest("GET", "/tasks-history", params)
        case "deep":
            cursor = _peer_cursor(fx) if target == "peer" else _rest_cursor(fx)
            return HttpRequest("GET", "/tasks-history", {"cursor": cursor})
        case "by_id":
            return HttpRequest("GET", f"/tasks-history/{fx.run_id}")
        case "by_end" | "slowest" | "started_asc":
            params = base | {"order": SCENARIO_ORDERS[scenario]}
            return HttpRequest("GET", "/tasks-history", params)
        case "within":
            params = base | {"queued_within": fx.within}
            return HttpRequest("GET", "/tasks-history", params)
        case "error":
            params = base | {"error_contains": ERROR_TEXT}
            return HttpRequest("GET", "/tasks-history", params)
        case "search":
            return HttpRequest("GET", "/tasks-history", base | {"search": SEARCH_TEXT})
    raise ValueError(scenario)


def _peer_cursor(fx: Fixtures) -> str:
    """The cursor aio-fluid would return for the page ending at ``fx.deep``."""
    return Cursor(
        entries=(CursorEntry("queued", fx.deep.key),),
        limit=PAGE,
        filters={},
        search_text="",
    ).encode(secret=fluid_settings.PAGINATION_SECRET)


def _rest_cursor(fx: Fixtures) -> str:
    """The cursor our REST route returns for the page ending at ``fx.deep``."""
    codec = CursorCodec.from_secret(default_cursor_secret())
    return codec.encode(RunOrder.QUEUED_DESC, fx.deep, {"limit": PAGE})


def rest_rows(scenario: str, payload: Any) -> int:
    """How many runs a REST answer holds."""
    if scenario == "by_id":
        return 1 if payload.get("id") else 0
    return len(payload["data"])


# GraphQL

#: Every scalar field of a TaskRun (``error`` holds two scalars), no lineage.
RUN_SELECTION = (
    "id", "runId", "task", "priority", "state", "queued", "start", "end",
    "duration", "params", "retryAttempt", "error { type message }", "tags",
    "parentRunId", "rootRunId",
)  # fmt: skip
_RUN_FIELDS = " " + " ".join(RUN_SELECTION) + " "


def page_query(fields: str = _RUN_FIELDS) -> str:
    """A page as a Relay client asks for it, its runs' ``fields`` selected,
    with one cursor (``endCursor``) like the REST answer's, not one per edge."""
    return (
        "query Page($first: Int!, $after: String, $filter: TaskRunFilter,"
        " $orderBy: TaskRunOrder) {"
        " runs(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {"
        " edges { node {" + fields + "} }"
        " pageInfo { hasNextPage endCursor } } }"
    )


_PAGE_QUERY = page_query()
_RUN_QUERY = "query Run($id: String!) { run(id: $id) {" + _RUN_FIELDS + "} }"
_COUNT_QUERY = (
    "query Count($filter: TaskRunFilter, $limit: Int!) {"
    " runs(filter: $filter) { countUpTo(limit: $limit) } }"
)
_APPROX_QUERY = "query Approx { runs { approximateCount } }"


def graphql_cursor(fx: Fixtures) -> str:
    """The ``after`` cursor of the page ending at ``fx.deep``."""
    codec = CursorCodec.from_secret(default_cursor_secret())
    return codec.encode(RunOrder.QUEUED_DESC, fx.deep)


def graphql_request(scenario: str, fx: Fixtures) -> HttpRequest:
    """``POST /tasks-graphql`` for the scenario."""
    variables: dict[str, Any] = {"first": PAGE}
    match scenario:
        case "newest":
            pass
        case "task":
            variables["filter"] = {"task": [SCENARIO_TASK]}
        case "failure":
            variables["filter"] = {"state": ["FAILURE"]}
        case "params":
            variables["filter"] = {"params": PARAMS_FILTER}
        case "deep":
            variables["after"] = graphql_cursor(fx)
        case "by_id":
            body = {"query": _RUN_QUERY, "variables": {"id": fx.run_id}}
            return HttpRequest("POST", "/tasks-graphql", body=body)
        case "by_end" | "slowest" | "started_asc":
            variables["orderBy"] = SCENARIO_ORDERS[scenario]
        case "within":
            variables["filter"] = {"queuedWithin": fx.within}
        case "error":
            variables["filter"] = {"errorContains": ERROR_TEXT}
        case "search":
            variables["filter"] = {"search": SEARCH_TEXT}
        case "approx_count":
            return HttpRequest("POST", "/tasks-graphql", body={"query": _APPROX_QUERY})
        case "count_up_to":
            count_vars = {"filter": {"state": ["FAILURE"]}, "limit": COUNT_LIMIT}
            body = {
                "query": _COUNT_QUERY,
                "variables": count_vars,
            }
            return HttpRequest("POST", "/tasks-graphql", body=body)
        case _:
            raise ValueError(scenario)
    body = {"query": _PAGE_QUERY, "variables": variables}
    return HttpRequest("POST", "/tasks-graphql", body=body)


def graphql_rows(scenario: str, payload: Any) -> int:
    """How many runs a GraphQL answer holds; raises on GraphQL errors."""
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors: {payload['errors']}")
    if scenario == "by_id":
        return 1 if payload["data"]["run"] else 0
    if scenario in COUNTS:
        return 1
    return len(payload["data"]["runs"]["edges"])


def http_request(target: str, scenario: str, fx: Fixtures) -> HttpRequest:
    """The request ``target`` answers ``scenario`` with."""
    if target.startswith("ours-graphql"):
        return graphql_request(scenario, fx)
    return rest_request(target, scenario, fx)


def count_rows(target: str, scenario: str, payload: Any) -> int:
    """How many runs ``target`` returned in ``payload``."""
    if target.startswith("ours-graphql"):
        return graphql_rows(scenario, payload)
    return rest_rows(scenario, payload)


def probe_request(target: str) -> HttpRequest:
    """A cheap request that answers 200 once ``target`` serves."""
    if target.startswith("ours-graphql"):
        return HttpRequest("POST", "/tasks-graphql", body={"query": "{ __typename }"})
    return HttpRequest("GET", "/tasks-history", {"limit": 1})
