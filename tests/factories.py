"""Run records (and workers' heartbeats) for tests that write the history
table directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fluid.scheduler import TaskState

from gql_history.core.records import RunRecord
from gql_history.db.store import HistoryStore
from gql_history.db.tables import workers_table

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run_record(run_id: str, **fields: Any) -> RunRecord:
    """A queued run ``run_id``, with ``fields`` overriding the defaults."""
    values: dict[str, Any] = dict(
        id=run_id,
        name="add",
        priority="medium",
        state=TaskState.queued,
        queued=T0,
        start=None,
        end=None,
        params={},
        from_run_id="",
        root_run_id="",
        retry_attempt=0,
        error_type=None,
        error_message=None,
        tags=[],
    )
    values.update(fields)
    return RunRecord(**values)


def lifecycle(run_id: str, **fields: Any) -> list[RunRecord]:
    """The queued, running and success records of one run, in order."""
    queued = fields.pop("queued", T0)
    start, end = queued + timedelta(seconds=1), queued + timedelta(seconds=2)
    return [
        run_record(run_id, queued=queued, **fields),
        run_record(
            run_id, queued=queued, state=TaskState.running, start=start, **fields
        ),
        run_record(
            run_id,
            queued=queued,
            state=TaskState.success,
            start=start,
            end=end,
            **fields,
        ),
    ]


async def beat(store: HistoryStore, worker: str, seconds_ago: float = 0) -> None:
    """A heartbeat of ``worker``, as if ``seconds_ago``."""
    await store.heartbeat(worker)
    if seconds_ago:
        workers = workers_table(store.table)
        async with store.engine.begin() as conn:
            await conn.execute(
                sa.update(workers)
                .where(workers.c.name == worker)
                .values(last_seen=sa.func.now() - timedelta(seconds=seconds_ago))
            )
