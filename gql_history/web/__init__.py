"""FastAPI: the GraphQL router, the REST routes and models, and create_app."""

from __future__ import annotations

from .app import create_app, include_history_routes
from .graphql_router import graphql_router
from .models import TaskHistoryQuery, TaskRunHistory, TaskRunHistoryPage

__all__ = [
    "TaskHistoryQuery",
    "TaskRunHistory",
    "TaskRunHistoryPage",
    "create_app",
    "graphql_router",
    "include_history_routes",
]
