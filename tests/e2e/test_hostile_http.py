"""Hostile HTTP input against a real ``gql-history serve``: each is refused
with a coded error (or matches nothing), and none leaves a traceback in the
server's log (the ``served`` fixture checks it)."""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from examples.clients.generate import ToolUnavailableError
from tests.e2e.conftest import Served
from tests.node import run_node

RUN = "query($id: String!) { run(id: $id) { runId } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
COUNT = "query($f: TaskRunFilter) { runs(filter: $f) { totalCount } }"
STATS = "query($f: TaskRunFilter) { runStats(filter: $f) { total } }"
NAMES = "query($f: TaskRunFilter) { taskNames(filter: $f) { task } }"
TAGS = "query($f: TaskRunFilter) { taskTags(filter: $f) { tag } }"
SUBSCRIPTION_AND_QUERY = (
    "subscription S { runUpdates { id } } query Q { tasks { name } }"
)
NUL, SURROGATE = "\x00", "\ud800"


@pytest.fixture(scope="module")
def client(served: Served) -> httpx.Client:
    with httpx.Client(base_url=served.base, timeout=30) as client:
        yield client  # type: ignore[misc]


def post(client: httpx.Client, body: bytes | dict[str, Any]) -> httpx.Response:
    """POST ``body`` (raw bytes, or JSON that may hold NaN or lone
    surrogates, which only Python's ``json`` writes) to the GraphQL endpoint."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()  # \\ud800 escaped, NaN as NaN
    return client.post(
        "/tasks-graphql",
        content=body,
        headers={"content-type": "application/json"},
    )


def errors_of(response: httpx.Response) -> list[tuple[str, str]]:
    return [
        (error["message"], error["extensions"]["code"])
        for error in response.json()["errors"]
    ]


def bad_text(what: str, value: str) -> tuple[str, str]:
    return (
        f"`{what}` holds {value!r}: NUL characters and lone surrogates are "
        "not valid in text",
        "BAD_USER_INPUT",
    )


@pytest.mark.parametrize("text", [NUL, SURROGATE, f"h-root{NUL}"])
@pytest.mark.parametrize(
    ("query", "variables", "data"),
    [
        (RUN, lambda t: {"id": t}, {"run": None}),
        (NODE, lambda t: {"id": _global_id(t)}, {"node": None}),
        (NODES, lambda t: {"ids": [_global_id(t)]}, {"nodes": [None]}),
    ],
    ids=["run", "node", "nodes"],
)
def test_hostile_ids_postgres_cannot_hold_match_no_run(
    client: httpx.Client, text: str, query: str, variables: Any, data: Any
) -> None:
    response = post(client, {"query": query, "variables": variables(text)})
    assert response.status_code == 200
    body = response.json()
    if query != RUN and text == SURROGATE:
        # not UTF-8 once decoded: not a global id at all
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    else:
        assert body == {"data": data}


@pytest.mark.parametrize("text", [NUL, SURROGATE])
@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("task", lambda t: [t], "task"),
        ("tags", lambda t: ["a", t], "tags"),
        ("parentRunId", lambda t: t, "parentRunId/rootRunId"),
        ("rootRunId", lambda t: t, "parentRunId/rootRunId"),
        ("errorContains", lambda t: t, "errorContains/search"),
        ("search", lambda t: t, "errorContains/search"),
        ("params", lambda t: {"user": t}, "params"),
        ("params", lambda t: {t: 1}, "params"),
    ],
)
@pytest.mark.parametrize("query", [COUNT, STATS, NAMES, TAGS])
def test_hostile_filter_text_postgres_cannot_hold_is_bad_user_input(
    client: httpx.Client, text: str, field: str, value: Any, what: str, query: str
) -> None:
    filter_ = {field: value(text)}
    response = post(client, {"query": query, "variables": {"f": filter_}})
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert errors_of(response) == [bad_text(what, text)]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_hostile_non_finite_params_are_bad_user_input(
    client: httpx.Client, number: str
) -> None:
    body = '{"query": "%s", "variables": {"f": {"params": {"a": %s}}}}'
    response = post(client, (body % (COUNT, number)).encode())
    value = {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[number]
    assert errors_of(response) == [
        (f"`params` holds {value}, which JSON lacks", "BAD_USER_INPUT")
    ]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"task": NUL}, bad_text("task", NUL)[0]),
        ({"tags": NUL}, bad_text("tags", NUL)[0]),
        ({"search": NUL}, bad_text("errorContains/search", NUL)[0]),
        ({"params": '{"a": "\\u0000"}'}, bad_text("params", NUL)[0]),
        ({"params": '{"\\ud800": 1}'}, bad_text("params", SURROGATE)[0]),
        ({"params": '{"a": NaN}'}, "`params` holds nan, which JSON lacks"),
    ],
)
def test_hostile_rest_filter_text_postgres_cannot_hold_is_422(
    client: httpx.Client, query: dict[str, str], reason: str
) -> None:
    response = client.get("/tasks-history", params=query)
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"type": "value_error", "loc": ["query"], "msg": reason, "input": None}
        ]
    }


@pytest.mark.parametrize("run_id", [NUL, SURROGATE, f"h-root{NUL}"])
def test_hostile_rest_run_id_postgres_cannot_hold_is_404(
    client: httpx.Client, run_id: str
) -> None:
    path = quote(run_id.encode("utf-8", "surrogatepass"), safe="")
    response = client.get(f"/tasks-history/{path}")
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "Task run not found"},
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'"a query"', "the request must be a JSON object, not a JSON scalar"),
        (b"42", "the request must be a JSON object, not a JSON scalar"),
        (b"null", "the request must be a JSON object, not a JSON scalar"),
        (b"true", "the request must be a JSON object, not a JSON scalar"),
        (b'{"query": "\xff\xfe"}', "Unable to parse request body as JSON"),
        (b"\xff" * 10, "Unable to parse request body as JSON"),
        (
            b'{"query": "{ tasks { name } }", "variables": '
            + b'{"a": ' * 5000
            + b"1"
            + b"}" * 5001,
            "Unable to parse request body as JSON",
        ),
    ],
    ids=["string", "number", "null", "boolean", "utf8", "binary", "deep"],
)
def test_hostile_bodies_get_a_coded_400(
    client: httpx.Client, body: bytes, message: str
) -> None:
    response = post(client, body)
    assert (response.status_code, errors_of(response)) == (
        400,
        [(message, "BAD_USER_INPUT")],
    )


def test_hostile_deep_variables_under_the_json_limit_are_bad_user_input(
    client: httpx.Client,
) -> None:
    # deep enough to exhaust graphql-core's coercion, not Python's JSON parser
    nested: Any = {"task": ["a"]}
    for _ in range(700):
        nested = {"not": nested}
    response = post(client, {"query": COUNT, "variables": {"f": nested}})
    assert response.status_code == 200
    [(message, code)] = errors_of(response)
    assert code == "BAD_USER_INPUT"
    assert message == "Variable values are nested too deeply."


def test_hostile_body_over_the_limit_is_413_unread(client: httpx.Client) -> None:
    padding = "x" * (1_048_576 + 1)
    body = json.dumps({"query": "{ tasks { name } }", "padding": padding}).encode()
    started = time.monotonic()
    response = post(client, body)
    assert (response.status_code, errors_of(response)) == (
        413,
        [("the request is over 1048576 bytes: send a smaller one", "BAD_USER_INPUT")],
    )
    assert time.monotonic() - started < 5


def test_hostile_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def chunks() -> Any:
        yield b'{"query": "{ tasks { name } }", "padding": "'
        for _ in range(20):
            yield b"x" * 100_000
        yield b'"}'

    response = client.post(
        "/tasks-graphql",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert errors_of(response)[0][1] == "BAD_USER_INPUT"


def test_hostile_query_string_over_the_limit_is_413(served: Served) -> None:
    # raw, as httpx would refuse so long a URL line itself
    address = urlsplit(served.base)
    connection = http.client.HTTPConnection(address.hostname, address.port)
    query = quote("{ tasks { name } }" + " " * 1_100_000)
    connection.request("GET", f"/tasks-graphql?query={query}")
    response = connection.getresponse()
    # refused by us, or by uvicorn's HTTP parser first
    assert response.status in (400, 413, 414, 431), response.status
    connection.close()


def test_hostile_large_documents_are_answered_and_not_kept(
    client: httpx.Client,
) -> None:
    # a document that is one string literal: few tokens, many bytes
    for index in range(3):
        literal = f"{index}" + "x" * 500_000
        query = f'{{ run(id: "{literal}") {{ runId }} }}'
        response = post(client, {"query": query})
        assert response.json() == {"data": {"run": None}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"query": "query A { tasks { name } } query B { runs { totalCount } }"},
            "the document holds several operations: name the one to run "
            "with `operationName`",
        ),
        (
            {"query": "{ tasks { name } } { runs { totalCount } }"},
            "This anonymous operation must be the only defined operation.",
        ),
        (
            {"query": SUBSCRIPTION_AND_QUERY},
            "the document holds several operations: name the one to run "
            "with `operationName`",
        ),
    ],
    ids=["named", "anonymous", "subscription-first"],
)
def test_hostile_several_operations_without_a_name_are_refused(
    client: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = post(client, body)
    assert response.status_code in (200, 400)
    assert errors_of(response)[:1] == [(message, "BAD_USER_INPUT")]
    assert response.json().get("data") is None


def test_hostile_named_operation_of_several_runs(client: httpx.Client) -> None:
    body = {"query": SUBSCRIPTION_AND_QUERY, "operationName": "Q"}
    assert post(client, body).json() == {"data": {"tasks": []}}


NESTED = """query($a: Int, $b: Int, $c: Int) {
  runs(first: $a) { edges { node { runId
    children(first: $b) { edges { node { runId
      children(first: $c) { totalCount }
    } } }
  } } }
}"""


def test_hostile_nested_connections_over_the_cost_are_refused(
    client: httpx.Client,
) -> None:
    response = post(
        client, {"query": NESTED, "variables": {"a": 100, "b": 100, "c": 100}}
    )
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "the operation may read up to 1010100 runs, more than "
                "10000: ask for smaller pages, or fewer nested `children`",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ],
    }


def test_hostile_cost_within_the_limit_is_served(client: httpx.Client) -> None:
    query = """{ runs(first: 100, orderBy: QUEUED_ASC) { edges { node { runId
        children(first: 20) { edges { node { runId } } } } } } }"""
    data = post(client, {"query": query}).json()["data"]
    root = data["runs"]["edges"][0]["node"]
    assert root == {
        "runId": "h-root",
        "children": {
            "edges": [
                {"node": {"runId": "h-child-1"}},
                {"node": {"runId": "h-child-2"}},
            ]
        },
    }


@pytest.mark.parametrize(
    ("filter_", "message"),
    [
        (
            {"task": ["t"] * 500_000},
            "the variables hold more than 10000 values: split the request",
        ),
        (
            {"or": [{"task": ["t"]}] * 10_000},
            "the variables hold more than 10000 values: split the request",
        ),
        (
            {"task": ["t"] * 5000},
            "a filter list holds 5000 values, more than 1000: split the request",
        ),
        (
            {"or": [{"task": ["t"]}] * 500},
            "the filter holds 501 conditions, more than 100: simplify it",
        ),
    ],
    ids=["long-list", "wide-or", "list", "or"],
)
def test_hostile_big_filters_are_refused(
    client: httpx.Client, filter_: dict[str, Any], message: str
) -> None:
    response = post(client, {"query": COUNT, "variables": {"f": filter_}})
    if response.status_code == 413:  # the body limit came first
        return
    assert errors_of(response) == [(message, "BAD_USER_INPUT")]


def test_hostile_rest_big_filter_is_422(client: httpx.Client) -> None:
    response = client.get("/tasks-history", params={"tags": ["t"] * 1001})
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == (
        "a filter list holds 1001 values, more than 1000: split the request"
    )


def test_hostile_kept_alive_requests_are_not_delayed(served: Served) -> None:
    """TCP_NODELAY on served connections: without it, each request after the
    first on a kept-alive connection waits ~40 ms (Nagle and delayed ACK)."""
    address = urlsplit(served.base)
    connection = http.client.HTTPConnection(address.hostname, address.port)
    connection.connect()
    assert connection.sock is not None
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        connection.request("GET", "/tasks-history?limit=5")
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        timings.append(time.perf_counter() - started)
    connection.close()
    # every request after the first would wait 40 ms; the fastest is far less
    assert min(timings[1:]) < 0.035, timings


def test_hostile_openapi_tells_the_truth(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    assert sorted(document["paths"]) == [
        "/tasks-history",
        "/tasks-history/export",
        "/tasks-history/{run_id}",
    ]
    history = document["paths"]["/tasks-history"]["get"]
    parameters = {p["name"]: p["schema"] for p in history["parameters"]}
    assert parameters["params"]["type"] == "string"
    assert parameters["params"]["contentMediaType"] == "application/json"
    assert parameters["start"]["anyOf"] == [
        {"type": "string", "format": "date-time"},
        {"type": "number", "description": "Unix time in seconds"},
    ]
    assert sorted(history["responses"]) == ["200", "422", "503"]
    run = document["paths"]["/tasks-history/{run_id}"]["get"]
    assert sorted(run["responses"]) == ["200", "404", "422", "503"]
    export = document["paths"]["/tasks-history/export"]["get"]
    assert sorted(export["responses"]["200"]["content"]) == [
        "application/x-ndjson",
        "text/csv",
    ]


def test_hostile_rest_params_as_openapi_says(client: httpx.Client) -> None:
    found = client.get("/tasks-history", params={"params": '{"user": "u1"}'})
    assert [run["id"] for run in found.json()["data"]] == ["h-failed"]
    # a Unix time, as the OpenAPI document says it may be
    later = client.get("/tasks-history", params={"start": "1767225780.5"})
    assert [run["id"] for run in later.json()["data"]] == ["h-failed"]


def test_hostile_graphql_over_http_audit_passes_every_must(served: Served) -> None:
    try:
        results = run_node("audit.mjs", served.graphql)
    except ToolUnavailableError as exc:
        pytest.skip(str(exc))
    musts = [result for result in results if result["name"].startswith("MUST")]
    assert len(musts) >= 10
    assert [r for r in musts if r["status"] != "ok"] == []


def _global_id(run_id: str) -> str:
    import base64

    raw = f"TaskRun:{run_id}".encode("utf-8", "surrogatepass")
    return base64.b64encode(raw).decode()
