"""Prepared queries over HTTP: a plain JSON ``POST`` of a document the
compiled path answered before is read without Strawberry's request pipeline
(``graphql.compiled.answer_prepared``), which costs more than the query's
own Python. Any other request (GET, a batch, multipart, a streamed answer,
a query not prepared, any failure) is left to the pipeline."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from ..core.persisted import PersistedDocuments
from ..errors import InvalidQueryError
from ..graphql.compiled import answer_prepared
from ..graphql.context import HistoryContext

#: Accept headers asking for a streamed response (Strawberry serves those).
_STREAMED = re.compile(r"multipart/mixed|text/event-stream")


async def prepared_data(
    request: Request,
    context: Any,
    schema: Any,
    persisted: PersistedDocuments,
) -> str | None:
    """The ``data`` text of ``request`` (its body read) if it is a prepared
    query, else None."""
    if (
        request.method != "POST"
        or not isinstance(context, HistoryContext)
        or not context.compiled
        or "application/json" not in request.headers.get("content-type", "")
        or _STREAMED.search(request.headers.get("accept", ""))
    ):
        return None
    try:
        data = json.loads(await request.body())
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None  # a batch, or not a request
    query, name, variables, extensions = (
        data.get(key) for key in ("query", "operationName", "variables", "extensions")
    )
    if not (
        isinstance(query, str | None)
        and isinstance(name, str | None)
        and isinstance(variables, dict | None)
        and isinstance(extensions, dict | None)
    ):
        return None
    try:
        query = persisted.resolve(query, extensions)
    except InvalidQueryError:
        return None
    if query is None:
        return None
    return await answer_prepared(schema, query, name, variables, context)
