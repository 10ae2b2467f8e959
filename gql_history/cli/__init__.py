"""The ``gql-history`` command line (also ``python -m gql_history``)."""

from __future__ import annotations

from .commands import cli, main

__all__ = ["cli", "main"]
