"""Where a live subscriber is in the stream of committed changes, and the
resume token that carries it.

A change's position is the transaction that wrote it: every write stores
``pg_current_xact_id()`` in the row (``xact_id``). Transactions commit in
another order than their ids, so no single id says what a subscriber has
been sent; a set of transactions does, in the form of a PostgreSQL snapshot:
the transactions it saw (below ``xmin``, or below ``xmax`` and not in
progress) are those whose changes were sent. A subscriber part-way through
one transaction's runs also holds, for that transaction, the last run id
sent (runs go out in ``(xact_id, id)`` order).

The hub reads what changed from one snapshot to the next (``StreamPosition``
``unsent`` rows visible in the later one), so a position is always built
from real snapshots, and its in-progress list stays as short as theirs.
Resuming from a position replays exactly the rows whose last writer it does
not cover: every committed change comes, none twice.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from ..db.notifications import Snapshot

#: Most in-progress transactions (and part-sent ones) a token may list:
#: many more than concurrent writers ever are.
MAX_TOKEN_XIDS = 10_000
#: Most part-sent transactions a token may name: the server's tokens name one
#: or two, and each becomes a condition of the replay's SQL statement.
MAX_TOKEN_PARTIAL = 64
#: The longest run id a token may carry (aio-fluid's ids have 32 characters).
_MAX_RUN_ID = 255
_VERSION = 1


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """The changes a subscriber has been sent: those of the transactions
    ``snapshot`` saw, and, of each transaction in ``partial``, its runs up to
    that run id."""

    snapshot: Snapshot
    partial: tuple[tuple[int, str], ...] = ()

    @classmethod
    def below(cls, horizon: int) -> StreamPosition:
        """Every transaction with an id below ``horizon``."""
        return cls(Snapshot(xmin=horizon, xmax=horizon, in_progress=frozenset()))

    def sent(self, xact_id: int, run_id: str) -> bool:
        """Whether the change of ``run_id`` by transaction ``xact_id`` was sent."""
        if self.snapshot.saw(xact_id):
            return True
        return any(xid == xact_id and run_id <= last for xid, last in self.partial)

    def then(self, xact_id: int, run_id: str, upper: Snapshot) -> StreamPosition:
        """This position once the change ``(xact_id, run_id)`` is sent, of the
        changes from here to ``upper``, sent in ``(xact_id, id)`` order.

        Sent by then: the transactions below ``xact_id`` that ``upper`` saw
        (their runs came first), those this position covers, and the runs of
        ``xact_id`` up to ``run_id``.
        """
        lower = self.snapshot
        assert upper.saw(xact_id) and not lower.saw(xact_id)
        xmax = max(xact_id, lower.xmax)
        running = {xid for xid in upper.in_progress if xid < xact_id}
        running |= {xid for xid in lower.in_progress if xid >= xact_id}
        xmin = min(running, default=xmax)
        snapshot = Snapshot(xmin=xmin, xmax=xmax, in_progress=frozenset(running))
        partial = ((xact_id, run_id), *(p for p in self.partial if p[0] > xact_id))
        return StreamPosition(snapshot, partial)

    def token(self) -> str:
        """The position as an opaque, URL-safe resume token."""
        snapshot = self.snapshot
        data = [
            _VERSION,
            snapshot.xmin,
            snapshot.xmax,
            sorted(snapshot.in_progress),
            [list(part) for part in self.partial],
        ]
        text = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(text).rstrip(b"=").decode()

    @classmethod
    def parse(cls, token: str) -> StreamPosition:
        """The position of a resume token; raises ``ValueError``."""
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            version, xmin, xmax, running, partial = data
            parts = tuple((_xid(xid), _run_id(run_id)) for xid, run_id in partial)
            running = frozenset(_xid(xid) for xid in running)
        except (TypeError, ValueError, UnicodeError, binascii.Error) as exc:
            raise ValueError("not a resume token of runUpdates") from exc
        if version != _VERSION or not _xid(xmin) <= _xid(xmax):
            raise ValueError("not a resume token of runUpdates")
        if len(running) + len(parts) > MAX_TOKEN_XIDS or len(parts) > MAX_TOKEN_PARTIAL:
            raise ValueError("not a resume token of runUpdates")
        if any(not xmin <= xid < xmax for xid in running):
            raise ValueError("not a resume token of runUpdates")
        snapshot = Snapshot(xmin=xmin, xmax=xmax, in_progress=running)
        if any(snapshot.saw(xid) for xid, _ in parts):
            raise ValueError("not a resume token of runUpdates")
        return cls(snapshot, parts)


def _xid(value: object) -> int:
    if type(value) is not int or not 0 < value < 2**63:
        raise ValueError(f"not a transaction id: {value!r}")
    return value


def _run_id(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_RUN_ID:
        raise ValueError(f"not a run id: {value!r}")
    return value
