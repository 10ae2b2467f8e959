"""The history table, a superset of aio-fluid TaskDbPlugin's ``fluid_tasks``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from ..core.names import DEFAULT_TABLE_NAME

#: What a missing key sorts as, so that runs without one come last whichever
#: way an order runs: a constant in the index and in every page statement.
_MISSING_TIME = {
    True: sa.literal_column("'-infinity'::timestamptz", sa.DateTime(timezone=True)),
    False: sa.literal_column("'infinity'::timestamptz", sa.DateTime(timezone=True)),
}
_MISSING_DURATION = {
    True: sa.literal_column("'-178000000 years'::interval", sa.Interval),
    False: sa.literal_column("'178000000 years'::interval", sa.Interval),
}
#: The extension the trigram indexes of text search need; an index that
#: needs it says so in its ``info``.
TRIGRAM_EXTENSION = "pg_trgm"
#: Columns text search reads for a substring, each with a trigram index (a
#: run id is searched by prefix: a btree serves it, see ``history_table``).
SEARCHED_COLUMNS = ("name", "error_message")
#: The keys of the orders ``queued`` (never null) is not.
NULLABLE_KEYS = ("start", "end", "duration")

#: Columns TaskDbPlugin creates; a table that has only these is served as is.
LEGACY_COLUMNS = frozenset(
    ("id", "name", "priority", "state", "queued", "start", "end", "params")
)


def _extension_columns() -> list[sa.Column[object]]:
    """Columns gql_history adds, all nullable, so an upgrade can add them."""
    return [
        sa.Column("from_run_id", sa.String(32), nullable=True),
        sa.Column("root_run_id", sa.String(32), nullable=True),
        sa.Column("retry_attempt", sa.Integer, nullable=True),
        sa.Column("error_type", sa.Text, nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        # one dimension: rows read back without a scan for nested lists
        sa.Column("tags", ARRAY(sa.Text, dimensions=1), nullable=True),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=True),
        # the process that wrote the run's latest event (see ``workers_table``)
        sa.Column("worker", sa.Text, nullable=True),
        # the last writing transaction (pg_current_xact_id()): a change's position
        sa.Column("xact_id", sa.BigInteger, nullable=True),
        # every transaction below it had ended when the row was written (``updated``)
        sa.Column("xact_horizon", sa.BigInteger, nullable=True),
    ]


def history_table(
    metadata: sa.MetaData, table_name: str = DEFAULT_TABLE_NAME
) -> sa.Table:
    """Define the history table (and its indexes) on ``metadata``.

    Column names and types match TaskDbPlugin's, so both plugins can share a
    table; the ``taskstate`` enum type is the same one SQLAlchemy names for it.
    """
    if table_name in metadata.tables:
        return metadata.tables[table_name]
    table = sa.Table(
        table_name,
        metadata,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, index=True),
        sa.Column("priority", sa.String(64), nullable=False, index=True),
        sa.Column("state", sa.Enum(TaskState), nullable=False, index=True),
        sa.Column("queued", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("start", sa.DateTime(timezone=True)),
        sa.Column("end", sa.DateTime(timezone=True)),
        sa.Column("params", JSONB),
        *_extension_columns(),
        sa.Index(f"ix_{table_name}_params", "params", postgresql_using="gin"),
        sa.Index(
            f"ix_{table_name}_queued_id",
            sa.desc("queued"),
            sa.desc("id"),
        ),
        sa.Index(f"ix_{table_name}_tags", "tags", postgresql_using="gin"),
        # text search's run-id prefix: ``id LIKE 'ab12%'`` becomes a range
        # scan whatever the database's collation (a trigram index of ids
        # is twice the size, slower to write and estimates prefixes poorly)
        sa.Index(
            f"ix_{table_name}_id_prefix",
            "id",
            postgresql_ops={"id": "varchar_pattern_ops"},
        ),
        # live subscriptions replay the runs changed since a time
        sa.Index(f"ix_{table_name}_updated_id", "updated", "id"),
        # and stream, or resume from a token, by writing transaction
        sa.Index(f"ix_{table_name}_xact_id_id", "xact_id", "id"),
        sa.Index(
            f"ix_{table_name}_root_run_id",
            "root_run_id",
            postgresql_where=sa.text("root_run_id IS NOT NULL AND root_run_id <> ''"),
        ),
        sa.Index(
            f"ix_{table_name}_from_run_id",
            "from_run_id",
            "queued",
            "id",
            postgresql_where=sa.text("from_run_id IS NOT NULL AND from_run_id <> ''"),
        ),
    )
    for key in NULLABLE_KEYS:
        for descending in (True, False):
            suffix = "desc" if descending else "asc"
            parts = (order_key(table.c, key, descending), table.c.id)
            sa.Index(
                f"ix_{table_name}_{key}_{suffix}_id",
                *(part.desc() if descending else part for part in parts),
            )
    search = []
    for name in SEARCHED_COLUMNS:
        index = sa.Index(
            f"ix_{table_name}_{name}_trgm",
            table.c[name],
            postgresql_using="gin",
            postgresql_ops={name: "gin_trgm_ops"},
            info={"extension": TRIGRAM_EXTENSION},
        )
        # kept off ``table.indexes``: ``table.create`` (and Alembic) would
        # fail where the extension is missing; the DDL adds them where it is
        table.indexes.discard(index)
        search.append(index)
    table.info["search_indexes"] = tuple(search)
    table.info["side_tables"] = side_tables(metadata, table_name)
    return table


def side_tables(metadata: sa.MetaData, table_name: str) -> tuple[sa.Table, ...]:
    """The small tables beside the history table: its workers' heartbeats
    and its retention horizon. The DDL creates them with the table and
    ``upgrade_tables`` adds them, with the ``worker`` column: where that
    column is, they are."""
    workers = sa.Table(
        f"{table_name}_workers",
        metadata,
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )
    retention = sa.Table(
        f"{table_name}_retention",
        metadata,
        # one row: the horizon the last prune applied
        sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.true()),
        sa.Column("horizon", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id", name=f"ck_{table_name}_retention_one_row"),
    )
    return workers, retention


def workers_table(table: sa.Table) -> sa.Table:
    """The heartbeats of the processes writing to ``table``."""
    workers: sa.Table = table.info["side_tables"][0]
    return workers


def retention_table(table: sa.Table) -> sa.Table:
    """The retention horizon of ``table``: no run queued before it is inserted."""
    retention: sa.Table = table.info["side_tables"][1]
    return retention


def all_indexes(table: sa.Table) -> list[sa.Index]:
    """The indexes of ``table``, with those that need an extension."""
    return [*table.indexes, *table.info.get("search_indexes", ())]


def order_key(c: Any, key: str, descending: bool) -> sa.ColumnElement[Any]:
    """The SQL of an order's key (``queued``, ``start``, ``end`` or
    ``duration``), null replaced by what sorts last in that direction: the
    same expression the order's index holds."""
    if key == "queued":
        return c.queued  # type: ignore[no-any-return]
    if key == "duration":
        return sa.func.coalesce(c.end - c.start, missing_key(key, descending))
    return sa.func.coalesce(c[key], missing_key(key, descending))


def missing_key(key: str, descending: bool) -> sa.ColumnElement[Any]:
    """What a run without ``key`` sorts as in an order running ``descending``."""
    missing = _MISSING_DURATION if key == "duration" else _MISSING_TIME
    return missing[descending]


def extension_columns(table: sa.Table) -> list[sa.Column[object]]:
    """The columns of ``table`` that TaskDbPlugin's table lacks."""
    return [c for c in table.columns if c.name not in LEGACY_COLUMNS]
