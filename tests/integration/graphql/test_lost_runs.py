"""A run the reaper marked, as GraphQL serves it: state, worker, error."""

from __future__ import annotations

from datetime import UTC, datetime

from fluid.scheduler import TaskState

from gql_history import HistoryService
from tests.factories import beat, run_record
from tests.gql import GraphQL

INTERRUPTED = """
query {
  runs(filter: {state: [INTERRUPTED]}) {
    edges { node { runId state worker error { type message } } }
  }
}
"""


async def test_lost_run_is_served_interrupted_with_its_worker_and_why(
    history: HistoryService, graphql: GraphQL
) -> None:
    store = history.store
    await beat(store, "gone", seconds_ago=60)
    await beat(store, "here")
    now = datetime.now(UTC)
    await store.upsert(
        [
            run_record(
                run_id, state=TaskState.running, queued=now, start=now, worker=worker
            )
            for run_id, worker in (("lost", "gone"), ("live", "here"))
        ]
    )
    assert await store.reap(reaper="me", grace=30, timeout_margin=0, timeouts={}) == 1
    [edge] = (await graphql.data(INTERRUPTED))["runs"]["edges"]
    message = edge["node"]["error"].pop("message")
    assert edge["node"] == {
        "runId": "lost",
        "state": "INTERRUPTED",
        "worker": "gone",
        "error": {"type": "gql_history.RunLost"},
    }
    assert message.startswith("worker gone stopped sending heartbeats at ")
