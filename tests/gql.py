"""A GraphQL client for the tests, over HTTP into the app (no server)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

#: Words that would reveal SQL, a stack trace or a connection string.
LEAKS = (
    "SELECT",
    "select ",
    "FROM ",
    "Traceback",
    'File "',
    "postgresql",
    "asyncpg",
    "sqlalchemy",
    "127.0.0.1",
)


class GraphQL:
    """POSTs documents to the GraphQL endpoint of an app."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        path: str = "/tasks-graphql",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.path = path
        self.headers = dict(headers or {})
        """Sent with every request."""

    async def post(self, query: str, **variables: Any) -> dict[str, Any]:
        """The whole JSON answer."""
        response = await self.client.post(
            self.path,
            json={"query": query, "variables": variables},
            headers=self.headers,
        )
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """The data of an answer that must have no errors."""
        body = await self.post(query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def errors(self, query: str, **variables: Any) -> list[dict[str, Any]]:
        """The errors of an answer that must have some, none leaking internals."""
        body = await self.post(query, **variables)
        assert body.get("errors"), body
        text = str(body["errors"])
        assert not [leak for leak in LEAKS if leak in text], text
        errors: list[dict[str, Any]] = body["errors"]
        return errors


def codes(errors: list[dict[str, Any]]) -> list[str]:
    """The ``extensions.code`` of each error."""
    return [error["extensions"]["code"] for error in errors]
