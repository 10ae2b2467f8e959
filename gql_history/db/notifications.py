"""The run-change notifications: sent by the write path with ``pg_notify``,
read back by the live-updates listener.

Both ends of the format live here. A write transaction sends, once it
commits, one notification per chunk of the rows it changed, each under
``PAYLOAD_BUDGET`` bytes of runs (NOTIFY refuses 8,000 bytes or more)::

    {"x": 7412, "r": [["<run id>", "success", 1767225600123456], ...]}

``x`` is the writing transaction's id (``pg_current_xact_id()``, which the
write also stores in each row as ``xact_id``). Each run comes with its state
and the ``updated`` the write gave it, in microseconds since the epoch: its
version. Runs are listed in ``(updated, id)`` order. Live updates take a
notification as a wakeup only: what changed, they read by snapshot (see
``gql_history.live.hub``): a late notification delays changes, never loses one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

#: Most bytes of run entries per notification: with the rest of the payload,
#: well clear of NOTIFY's 8,000-byte limit.
PAYLOAD_BUDGET = 7000
#: PostgreSQL truncates identifiers, channel names included, past 63 bytes.
_MAX_CHANNEL = 63
_PREFIX = "gql_history:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def channel_for(table: sa.Table) -> str:
    """The channel the writes of ``table`` are notified on (per database)."""
    name = _PREFIX + table.fullname
    if len(name.encode()) > _MAX_CHANNEL:
        digest = hashlib.sha1(table.fullname.encode()).hexdigest()
        name = _PREFIX + digest
    return name


#: A changed run: its id, state and version (``None`` without ``updated``).
ChangedRun = tuple[str, str, int | None]


def payload_chunks(runs: Iterable[ChangedRun]) -> list[str]:
    """The ``r`` arrays of the notifications of ``runs``, in order: JSON
    arrays of at most ``PAYLOAD_BUDGET`` bytes each."""
    chunks: list[str] = []
    entries: list[str] = []
    size = 0
    for run in runs:
        entry = json.dumps(run, separators=(",", ":"))  # ASCII: a byte a char
        if entries and size + len(entry) + 1 > PAYLOAD_BUDGET:
            chunks.append(f"[{','.join(entries)}]")
            entries, size = [], 0
        entries.append(entry)
        size += len(entry) + 1
    if entries:
        chunks.append(f"[{','.join(entries)}]")
    return chunks


def notify_statement(channel: str) -> sa.Select[Any]:
    """A select notifying, on ``channel``, each chunk of the ``chunks``
    parameter (from ``payload_chunks``), with the transaction's id.

    PostgreSQL holds notifications until the transaction commits, and drops
    them if it rolls back: a notification always means a committed change.
    """
    chunks = (
        sa.func.unnest(sa.bindparam("chunks", type_=ARRAY(sa.Text)))
        .table_valued("chunk")
        .render_derived()
    )
    payload = sa.func.concat(
        sa.literal_column("'{\"x\":'"),
        sa.cast(sa.func.pg_current_xact_id(), sa.Text),
        sa.literal_column("',\"r\":'"),
        chunks.c.chunk,
        sa.literal_column("'}'"),
    )
    return sa.select(
        sa.func.pg_notify(sa.literal(channel, sa.Text), payload)
    ).select_from(chunks)


@dataclass(frozen=True, slots=True)
class Change:
    """Runs one committed transaction changed (one chunk of them)."""

    xid: int
    """The writing transaction's id."""
    runs: tuple[ChangedRun, ...]
    """``(run id, state, version)`` of each run it changed, in order."""


def parse_change(payload: str) -> Change:
    """The change a notification payload describes; raises ``ValueError``."""
    try:
        data = json.loads(payload)
        runs = tuple(
            (str(run_id), str(state), None if version is None else int(version))
            for run_id, state, version in data["r"]
        )
        return Change(xid=int(data["x"]), runs=runs)
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"not a gql_history notification: {payload[:80]!r}") from exc


def version_of(updated: datetime | None) -> int | None:
    """``updated`` in microseconds since the epoch, as notifications carry it."""
    if updated is None:
        return None
    return (updated - _EPOCH) // _MICROSECOND


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A PostgreSQL MVCC snapshot (``pg_current_snapshot()``): which
    transactions a read saw."""

    xmin: int
    xmax: int
    in_progress: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        """The snapshot of ``pg_snapshot`` text, ``xmin:xmax:xip,...``."""
        xmin, xmax, xip = text.split(":")
        running = frozenset(int(xid) for xid in xip.split(",") if xid)
        return cls(xmin=int(xmin), xmax=int(xmax), in_progress=running)

    def saw(self, xid: int) -> bool:
        """Whether a read under this snapshot saw the committed transaction
        ``xid`` (``pg_visible_in_snapshot``)."""
        if xid < self.xmin:
            return True
        return xid < self.xmax and xid not in self.in_progress
