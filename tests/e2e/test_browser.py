"""The pages in a real browser: Debian's Chromium driven by Playwright,
against a live ``gql-history serve`` over a seeded table. Every page is
checked for console errors and for requests to other hosts; screenshots go
to ``test-artifacts/screenshots`` (gitignored)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fluid.scheduler import TaskState
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_history import TaskHistoryPlugin
from gql_history.core.records import RunRecord
from tests.factories import run_record
from tests.servers import ROOT, running_command

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PAGE_SIZE = 50  # the dashboard's
TASKS = ("ping", "add", "report")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)


def seed_runs(now: datetime) -> list[RunRecord]:
    """130 runs a minute apart, newest first, every 7th failed, and a chain
    root-run > child-run > grandchild-run."""
    runs = []
    for i in range(130):
        failed = i % 7 == 3
        runs.append(
            run_record(
                f"run-{i:03d}",
                name=TASKS[i % 3],
                state=TaskState.failure if failed else TaskState.success,
                queued=now - timedelta(minutes=i + 1),
                start=now - timedelta(minutes=i + 1),
                end=now - timedelta(minutes=i + 1) + timedelta(seconds=1 + i % 5),
                error_type="ValueError" if failed else None,
                error_message="no data" if failed else None,
                params={"user": f"u{i % 4}"},
            )
        )
    chain = now - timedelta(minutes=200)
    runs += [
        run_record("root-run", name="report", queued=chain, state=TaskState.success),
        run_record(
            "child-run",
            name="add",
            queued=chain + timedelta(seconds=1),
            from_run_id="root-run",
            root_run_id="root-run",
        ),
        run_record(
            "grandchild-run",
            name="ping",
            queued=chain + timedelta(seconds=2),
            from_run_id="child-run",
            root_run_id="root-run",
        ),
    ]
    return runs


@pytest.fixture(scope="module")
async def plugin(
    database_url: str, fresh_table: str
) -> AsyncIterator[TaskHistoryPlugin]:
    """Writes the module's table, as a task manager's plugin would."""
    plugin = TaskHistoryPlugin(database_url, table_name=fresh_table)
    await plugin.create_tables()
    await plugin.store.upsert(seed_runs(datetime.now(UTC)))
    yield plugin
    await plugin.close()


@pytest.fixture(scope="module")
def base_url(
    database_url: str, fresh_table: str, plugin: TaskHistoryPlugin
) -> Iterator[str]:
    args = ["serve", "--database-url", database_url, "--table-name", fresh_table]
    with running_command([*args, "--port", "0"], ready="GraphiQL at ") as (_, out):
        yield out.split("GraphiQL at ")[1].split("/tasks-graphql")[0]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            # root in a container has no user namespaces for the sandbox
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
        )
        yield browser
        await browser.close()


class Watched:
    """A page, and what went wrong on it: console errors, uncaught
    exceptions and requests to any other host."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.problems: list[str] = []
        origins = (base_url, base_url.replace("http", "ws", 1), "data:", "blob:")
        page.on(
            "console",
            lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"),
        )
        page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        page.on(
            "request",
            lambda r: (
                r.url.startswith(origins)
                or self.problems.append(f"other host: {r.url}")
            ),
        )

    async def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


@pytest.fixture
async def watched(browser: Browser, base_url: str) -> AsyncIterator[Watched]:
    context = await browser.new_context(
        base_url=base_url, viewport={"width": 1280, "height": 900}
    )
    watched = Watched(await context.new_page(), base_url)
    yield watched
    await context.close()
    assert watched.problems == []


async def newest_ids(
    engine: AsyncEngine, table: str, where: str = "true", offset: int = 0
) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                f'SELECT id FROM "{table}" WHERE {where} '
                f"ORDER BY queued DESC, id DESC LIMIT {PAGE_SIZE} OFFSET {offset}"
            )
        )
    return [row.id for row in rows]


async def shown_ids(page: Page) -> list[str]:
    ids: list[str] = await page.eval_on_selector_all(
        "table.runs tbody tr[data-run-id]", "rows => rows.map(r => r.dataset.runId)"
    )
    return ids


async def wait_for_rows(page: Page, expected: list[str]) -> None:
    """Poll the table until it shows ``expected``, within 5 s."""
    deadline = time.monotonic() + 5
    while (shown := await shown_ids(page)) != expected:
        if time.monotonic() > deadline:
            assert shown == expected
        await page.wait_for_timeout(50)


async def test_browser_graphiql_opens_a_linked_query_and_runs_it(
    watched: Watched,
) -> None:
    page = watched.page
    await page.goto('/tasks-graphql?query={ run(id: "root-run") { runId task } }')
    editor = page.locator(".graphiql-query-editor")
    await expect(editor).to_contain_text('run(id: "root-run")')
    await page.locator(".graphiql-execute-button").click()
    await expect(page.locator(".graphiql-response")).to_contain_text('"task": "report"')
    await page.get_by_role("button", name="Show GraphiQL Explorer").click()
    await expect(page.locator(".graphiql-plugin")).to_contain_text("runStats")
    await watched.screenshot("graphiql")


async def test_browser_graphiql_first_shows_recent_runs(watched: Watched) -> None:
    await watched.page.goto("/tasks-graphql")
    await expect(watched.page.locator(".graphiql-query-editor")).to_contain_text(
        "runs(first: 5)"
    )


async def test_browser_docs_render(watched: Watched) -> None:
    page = watched.page
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "Task history"
    )
    await expect(page.locator(".opblock").first).to_be_visible()
    await watched.screenshot("docs")
    await page.goto("/redoc")
    await expect(page.locator("h1").first).to_contain_text("Task history")
    await watched.screenshot("redoc")


async def test_browser_dashboard_lists_the_newest_runs_and_pages(
    watched: Watched, engine: AsyncEngine, fresh_table: str
) -> None:
    page = watched.page
    await page.goto("/tasks-ui")
    await wait_for_rows(page, await newest_ids(engine, fresh_table))
    await expect(page.locator(".count")).to_have_text("133 runs")
    await expect(page.locator(".overview .chart canvas").first).to_be_visible()
    await expect(page.locator(".overview")).to_contain_text("Busiest tasks")
    await watched.screenshot("dashboard")

    older = page.locator('button[data-page="older"]').first
    await older.click()
    await wait_for_rows(page, await newest_ids(engine, fresh_table, offset=PAGE_SIZE))
    await older.click()
    await wait_for_rows(
        page, await newest_ids(engine, fresh_table, offset=2 * PAGE_SIZE)
    )
    await expect(older).to_be_disabled()
    await page.locator('button[data-page="newer"]').first.click()
    await wait_for_rows(page, await newest_ids(engine, fresh_table, offset=PAGE_SIZE))
    await page.go_back()
    await wait_for_rows(
        page, await newest_ids(engine, fresh_table, offset=2 * PAGE_SIZE)
    )


async def test_browser_dashboard_filters_by_state_and_task(
    watched: Watched, engine: AsyncEngine, fresh_table: str
) -> None:
    page = watched.page
    await page.goto("/tasks-ui")
    await page.locator('select[name="state"]').select_option("FAILURE")
    await wait_for_rows(
        page, await newest_ids(engine, fresh_table, "state = 'failure'")
    )
    await page.locator('select[name="task"]').select_option("add")
    await wait_for_rows(
        page,
        await newest_ids(engine, fresh_table, "state = 'failure' AND name = 'add'"),
    )
    assert "state=FAILURE" in page.url
    assert "task=add" in page.url
    # the URL is the view: opened afresh, it shows the same runs
    await page.reload()
    await wait_for_rows(
        page,
        await newest_ids(engine, fresh_table, "state = 'failure' AND name = 'add'"),
    )
    await watched.screenshot("dashboard-filtered")


async def exported_ids(page: Page, format: str) -> list[str]:
    """The ids of the runs the view's ``format`` export link downloads."""
    async with page.expect_download() as started:
        await page.locator(f'a[data-export="{format}"]').click()
    download = await started.value
    assert download.suggested_filename == f"task-history.{format}"
    saved = Path(await download.path())
    text = await asyncio.to_thread(saved.read_text, encoding="utf-8")
    if format == "csv":
        return [row["id"] for row in csv.DictReader(io.StringIO(text))]
    return [json.loads(line)["id"] for line in text.splitlines()]


async def test_browser_dashboard_exports_the_view_as_csv_and_ndjson(
    watched: Watched, engine: AsyncEngine, fresh_table: str
) -> None:
    """Each export link downloads every run of the view's filters (not only
    its page), newest first, the page shown being their start."""
    page = watched.page
    await page.goto("/tasks-ui?state=SUCCESS&window=24h")
    where = "state = 'success' AND queued >= now() - interval '24 hours'"
    await wait_for_rows(page, await newest_ids(engine, fresh_table, where))
    await page.locator('select[name="task"]').select_option("add")
    where += " AND name = 'add'"
    shown = await newest_ids(engine, fresh_table, where)
    await wait_for_rows(page, shown)
    for format in ("csv", "ndjson"):
        ids = await exported_ids(page, format)
        async with engine.connect() as conn:
            every = await conn.scalars(
                text(
                    f'SELECT id FROM "{fresh_table}" WHERE {where} '
                    "ORDER BY queued DESC, id DESC"
                )
            )
            assert ids == list(every)
        assert ids[: len(shown)] == shown
    # more runs than a page: the export is not the page
    await page.goto("/tasks-ui")
    assert len(await exported_ids(page, "ndjson")) > PAGE_SIZE


async def test_browser_dashboard_shows_a_runs_lineage(watched: Watched) -> None:
    page = watched.page
    await page.goto("/tasks-ui?run=child-run")
    tree = page.locator(".tree")
    links = {
        "parent": "root-run",
        "self": "child-run",
        "child": "grandchild-run",
    }
    for place, run_id in links.items():
        await expect(tree.locator(f'[data-lineage="{place}"] > a')).to_have_attribute(
            "href", f"/tasks-ui?run={run_id}"
        )
    await tree.locator('[data-lineage="child"] > a').click()
    await expect(page.locator("article.run")).to_have_attribute(
        "data-run-id", "grandchild-run"
    )
    await expect(page.locator('[data-lineage="root"] > a')).to_have_attribute(
        "href", "/tasks-ui?run=root-run"
    )
    await watched.screenshot("run-lineage")


async def test_browser_dashboard_shows_a_run_written_after_it_loaded(
    watched: Watched, plugin: TaskHistoryPlugin
) -> None:
    page = watched.page
    await page.goto("/tasks-ui")
    await expect(page.locator('[data-live="live"]')).to_be_visible()
    await expect(page.locator("table.runs tbody tr").first).to_be_visible()
    await plugin.store.upsert(
        [run_record("live-run", name="ping", queued=datetime.now(UTC))]
    )
    written = time.monotonic()
    row = page.locator('tr[data-run-id="live-run"]')
    await expect(row).to_be_visible(timeout=5000)
    assert time.monotonic() - written < 5
    await plugin.store.upsert(
        [
            run_record(
                "live-run",
                name="ping",
                queued=datetime.now(UTC),
                state=TaskState.running,
            )
        ]
    )
    await expect(row).to_have_attribute("data-state", "RUNNING", timeout=5000)
    await page.locator('[data-live="live"]').click()
    await expect(page.locator('[data-live="paused"]')).to_have_text("Paused")


async def test_browser_dashboard_works_from_the_keyboard(watched: Watched) -> None:
    page = watched.page
    await page.goto("/tasks-ui")
    link = page.locator("tr[data-run-id] a").first
    run_id = await page.locator("tr[data-run-id]").first.get_attribute("data-run-id")
    await link.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("article.run")).to_have_attribute(
        "data-run-id", run_id or ""
    )
    await page.go_back()
    await page.locator('select[name="state"]').focus()
    await page.keyboard.press("ArrowDown")  # the first state after "any"
    await expect(page).to_have_url(re.compile(r"state=INIT"))
    await page.locator("[data-live]").focus()
    await page.keyboard.press("Space")
    await expect(page.locator('[data-live="paused"]')).to_be_visible()


async def test_browser_dashboard_resumes_after_the_server_restarts(
    browser: Browser, database_url: str, fresh_table: str, plugin: TaskHistoryPlugin
) -> None:
    """A run written while the server is down shows once it is back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["serve", "--database-url", database_url, "--table-name", fresh_table]
    args += ["--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    context = await browser.new_context(base_url=base)
    watched = Watched(await context.new_page(), base)
    page = watched.page
    with running_command(args, ready="GraphiQL at "):
        await page.goto("/tasks-ui")
        await expect(page.locator('[data-live="live"]')).to_be_visible()
    await expect(page.locator('[data-live="reconnecting"]')).to_be_visible()
    await plugin.store.upsert(
        [run_record("while-down", name="ping", queued=datetime.now(UTC))]
    )
    with running_command(args, ready="GraphiQL at "):
        await expect(page.locator('tr[data-run-id="while-down"]')).to_be_visible(
            timeout=15_000
        )
        await expect(page.locator('[data-live="live"]')).to_be_visible()
    await context.close()
    # while it was down, only the browser's own reports of failed connections
    assert [p for p in watched.problems if "ERR_CONNECTION_REFUSED" not in p] == []


async def test_browser_dashboard_fits_a_phone(browser: Browser, base_url: str) -> None:
    context = await browser.new_context(
        base_url=base_url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    watched = Watched(await context.new_page(), base_url)
    page = watched.page
    await page.goto("/tasks-ui")
    await expect(page.locator("table.runs tbody tr").first).to_be_visible()
    # nothing wider than the screen but the table, which scrolls on its own
    width = await page.evaluate("document.documentElement.scrollWidth")
    await watched.screenshot("dashboard-phone")
    # keyboard: Tab reaches the filters and the first run's link
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.tagName")
    await context.close()
    assert (width, focused, watched.problems) == (390, "A", [])
