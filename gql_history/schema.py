"""The default schema, ``gql_history.schema:schema``, which ``strawberry
export-schema`` prints; it is defined in ``gql_history.graphql.schema``."""

from __future__ import annotations

from .graphql.schema import build_schema, schema

__all__ = ["build_schema", "schema"]
