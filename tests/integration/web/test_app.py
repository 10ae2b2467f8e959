"""The standalone app's startup."""

from __future__ import annotations

import gc

from starlette.testclient import TestClient

from gql_history import create_app
from gql_history.web.app import YOUNG_GC_THRESHOLD


def test_app_tunes_garbage_collection_while_serving(database_url: str) -> None:
    """Full collections skip what startup allocated, young ones wait for more
    than a page's garbage; both as before once the app stops."""
    thresholds = gc.get_threshold()
    app = create_app(database_url)
    before = gc.get_freeze_count()
    with TestClient(app):
        # the app, its plugin and schema among them
        assert gc.get_freeze_count() > before + 10_000
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *thresholds[1:])
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() <= before


def test_app_tuning_lasts_until_the_last_app_stops(database_url: str) -> None:
    thresholds = gc.get_threshold()
    with TestClient(create_app(database_url)):
        with TestClient(create_app(database_url)):
            pass
        assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
    assert gc.get_threshold() == thresholds
