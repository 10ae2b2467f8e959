"""The Strawberry schema: types, inputs, enums, roots, the per-request
context and loaders, error codes and the bulk execution context."""

from __future__ import annotations

from .context import HistoryContext
from .schema import build_schema, schema

__all__ = ["HistoryContext", "build_schema", "schema"]
