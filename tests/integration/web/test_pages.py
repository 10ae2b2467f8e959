"""The browser pages over HTTP: GraphiQL (and a link's `?query=`), the
dashboard and the API docs, every asset from the package."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from gql_history import create_app
from gql_history.web.pages import STATIC_DIR

HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")


@pytest.fixture(scope="module")
async def client(history_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(history_app) as client:
        yield client


def assets_of(page: str) -> list[str]:
    """The scripts and styles a page loads."""
    return re.findall(r'(?:src|href)="([^"]+\.(?:js|css|svg))"', page)


async def test_pages_load_every_asset_from_the_package(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/tasks-graphql", "/tasks-ui", "/docs", "/redoc"):
        page = await client.get(path, headers=HTML)
        assert page.status_code == 200, path
        assets = assets_of(page.text)
        assert assets, path
        assert all(a.startswith("/tasks-static/") for a in assets), (path, assets)
        for asset in assets:
            response = await client.get(asset)
            assert response.status_code == 200, asset
            name = asset.removeprefix("/tasks-static/")
            assert response.content == (STATIC_DIR / name).read_bytes()


async def test_pages_assets_are_compressed_and_cached(
    client: httpx.AsyncClient,
) -> None:
    asset = "/tasks-static/vendor/graphiql/graphiql.min.js"
    response = await client.get(asset, headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.num_bytes_downloaded < len(response.content) / 2
    again = await client.get(asset, headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304


async def test_pages_browser_get_with_query_opens_graphiql(
    client: httpx.AsyncClient,
) -> None:
    params = {"query": "{ tasks { name } }", "operationName": "x"}
    page = await client.get("/tasks-graphql", params=params, headers=HTML)
    assert page.headers["content-type"].startswith("text/html")
    assert '<div id="graphiql">' in page.text
    # the default query: a recent page of runs
    assert "runs(first: 5)" in page.text


async def test_pages_other_gets_with_query_execute_it(
    client: httpx.AsyncClient,
) -> None:
    params = {"query": "{ tasks { name } }"}
    for accept in ("*/*", "application/json"):
        response = await client.get(
            "/tasks-graphql", params=params, headers={"accept": accept}
        )
        assert (response.status_code, response.json()) == (
            200,
            {"data": {"tasks": []}},
        )


async def test_pages_dashboard_names_its_endpoint(client: httpx.AsyncClient) -> None:
    page = await client.get("/tasks-ui", headers=HTML)
    assert 'data-graphql="/tasks-graphql"' in page.text
    assert 'data-page="/tasks-ui"' in page.text
    assert 'data-export="/tasks-history/export"' in page.text


async def test_pages_dashboard_can_be_turned_off(database_url: str) -> None:
    app = create_app(database_url, dashboard=False)
    async with client_of(app) as client:
        assert (await client.get("/tasks-ui", headers=HTML)).status_code == 404
        # GraphiQL keeps its assets
        graphiql = await client.get("/tasks-graphql", headers=HTML)
        for asset in assets_of(graphiql.text):
            assert (await client.get(asset)).status_code == 200
    await app.state.history_service.close()
