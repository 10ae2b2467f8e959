"""Schemathesis against a real ``gql-history serve``: generated GraphQL
queries (from introspection) and REST requests (from OpenAPI), a bounded
number of each. None may get a 5xx, an ``INTERNAL_SERVER_ERROR``, or a
response its schema does not allow; none leaves a traceback in the log (the
``served`` fixture checks it). A schema-valid request may still be refused
(4xx, ``BAD_USER_INPUT``): page sizes, cursors and filters have rules no
schema states, so schemathesis's ``positive_data_acceptance`` is left out."""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.e2e.conftest import Served

#: Examples per operation: enough to reach every argument, few enough for CI.
EXAMPLES = 25
#: Cases run per endpoint kind, reported once the module is done.
CASES: Counter[str] = Counter()

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run
    suppress_health_check=list(HealthCheck),
)


def fuzz(schema: Any, kind: str, check: Any) -> None:
    """Run ``check`` on ``EXAMPLES`` generated cases of each operation of
    ``schema`` (by hand: schemathesis's pytest loader predates pytest 9)."""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:

        @given(case=operation.as_strategy())
        @FUZZ
        def run(case: Any) -> None:
            CASES[kind] += 1
            check(case)

        run()


def test_fuzz_graphql_answers_every_query_with_data_or_coded_errors(
    served: Served,
) -> None:
    def check(case: Any) -> None:
        response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        body = response.json()
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        assert codes <= {"BAD_USER_INPUT"}, body

    fuzz(schemathesis.graphql.from_url(served.graphql), "graphql", check)


def test_fuzz_rest_answers_as_openapi_says(served: Served) -> None:
    def check(case: Any) -> None:
        response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        assert response.status_code < 500

    fuzz(schemathesis.openapi.from_url(f"{served.base}/openapi.json"), "rest", check)


def test_fuzz_ran_every_case() -> None:
    print(f"\nschemathesis cases: {dict(CASES)}")
    assert CASES["graphql"] >= EXAMPLES and CASES["rest"] >= EXAMPLES
