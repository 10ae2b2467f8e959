"""The standalone app's startup."""

from __future__ import annotations

import gc

from starlette.testclient import TestClient

from gql_history import create_app


def test_app_startup_freezes_what_startup_allocated(database_url: str) -> None:
    """Full collections skip the frozen objects, so none pauses a request
    for the whole heap."""
    gc.unfreeze()
    app = create_app(database_url)
    before = gc.get_freeze_count()
    with TestClient(app):
        # the app, its plugin and schema among them
        assert gc.get_freeze_count() > before + 10_000
