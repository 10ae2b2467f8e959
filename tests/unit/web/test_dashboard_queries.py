"""The dashboard's GraphQL documents are valid against the schema, so the
dashboard cannot drift from the public API without a failing test."""

from __future__ import annotations

import re

from graphql import parse, validate

from gql_history.graphql.schema import schema
from gql_history.web.pages import STATIC_DIR

API = STATIC_DIR / "dashboard" / "api.js"
#: `export const NAME = gql`...`` optionally followed by `+ FRAGMENT`.
_DOCUMENT = re.compile(r"const (\w+) = gql`([^`]*)`(?: \+ (\w+))?;")


def documents() -> dict[str, str]:
    """Each named document of api.js, with the fragment it appends."""
    found = {
        name: (text, fragment)
        for name, text, fragment in _DOCUMENT.findall(API.read_text())
    }
    return {
        name: text + (found[fragment][0] if fragment else "")
        for name, (text, fragment) in found.items()
    }


def test_dashboard_queries_are_valid_against_the_schema() -> None:
    docs = documents()
    operations = {name for name, text in docs.items() if "fragment" not in text[:20]}
    assert operations == {
        "RUNS_PAGE",
        "RUNS_COUNT",
        "TASK_NAMES",
        "RUN_UPDATES",
        "OVERVIEW",
        "RUN_PAGE",
    }
    errors = {
        name: [error.message for error in validate(schema._schema, parse(docs[name]))]
        for name in operations
    }
    assert errors == {name: [] for name in operations}
