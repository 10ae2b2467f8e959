"""``GET {prefix}-history/export``: the runs of a REST query as NDJSON or
CSV, streamed through keyset pages so memory stays flat at any size."""

from __future__ import annotations

import csv
import enum
import io
import json
from collections.abc import AsyncIterator, Iterable
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel

from ..core.paging import Page, PageRequest, RunOrder
from ..service import HistoryService
from .models import TaskHistoryQuery, TaskRunHistory

#: Runs read per keyset page while exporting.
EXPORT_PAGE = 500
DEFAULT_MAX_ROWS = 10_000
MAX_ROWS = 1_000_000
COLUMNS = tuple(TaskRunHistory.model_fields)


class ExportFormat(enum.StrEnum):
    """What an export is written as."""

    NDJSON = "ndjson"
    CSV = "csv"

    @property
    def media_type(self) -> str:
        """The response's content type."""
        return "application/x-ndjson" if self is ExportFormat.NDJSON else "text/csv"


class ExportOptions(BaseModel):
    """How an export is written and how far it goes."""

    format: Annotated[
        ExportFormat, Query(description="ndjson (one JSON run a line) or csv")
    ] = ExportFormat.NDJSON
    max_rows: Annotated[
        int,
        Query(
            description=f"Stop after this many runs ({DEFAULT_MAX_ROWS:,} by "
            f"default, at most {MAX_ROWS:,})",
            ge=0,
            le=MAX_ROWS,
        ),
    ] = DEFAULT_MAX_ROWS


async def export_lines(
    service: HistoryService, q: TaskHistoryQuery, options: ExportOptions
) -> AsyncIterator[str]:
    """The export's text, a page at a time. The first page is read before
    this returns, so a bad query fails before any byte is sent."""
    order = q.order or RunOrder.QUEUED_DESC
    run_filter = q.run_filter()

    async def page_after(page: Page | None, left: int) -> Page:
        start = None if page is None else order.position(page.runs[-1])
        size = min(EXPORT_PAGE, left)
        request = PageRequest(order=order, limit=size, start=start, backward=False)
        return await service.page(run_filter, request)

    first = await page_after(None, options.max_rows) if options.max_rows else None

    async def lines() -> AsyncIterator[str]:
        if options.format is ExportFormat.CSV:
            yield _csv_rows([COLUMNS])
        page, left = first, options.max_rows
        while page is not None:
            runs = [TaskRunHistory.from_record(run) for run in page.runs]
            left -= len(runs)
            yield _write(options.format, runs)
            if not page.has_more or left <= 0:
                break
            page = await page_after(page, left)

    return lines()


def _write(format: ExportFormat, runs: list[TaskRunHistory]) -> str:
    if format is ExportFormat.NDJSON:
        return "".join(run.model_dump_json() + "\n" for run in runs)
    return _csv_rows(_csv_values(run) for run in runs)


def _csv_values(run: TaskRunHistory) -> list[object]:
    """A run's CSV cells: params and tags as JSON, absent values empty."""
    values = run.model_dump(mode="json")
    return [
        json.dumps(values[name]) if name in ("params", "tags") else values[name]
        for name in COLUMNS
    ]


def _csv_rows(rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()
