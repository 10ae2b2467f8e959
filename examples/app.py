"""The example aio-fluid application: a task scheduler recording its history.

It is the demo's (``gql-history demo``), shipped in the package so that the
demo runs from a wheel; read it there: ``gql_history/cli/demo_app.py``.
"""

from gql_history.cli.demo_app import create_app, create_task_manager

__all__ = ["create_app", "create_task_manager"]
