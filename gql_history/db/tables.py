"""The history table, a superset of aio-fluid TaskDbPlugin's ``fluid_tasks``."""

from __future__ import annotations

import sqlalchemy as sa
from fluid.scheduler import TaskState
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from ..core.names import DEFAULT_TABLE_NAME

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
    return sa.Table(
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
        # live subscriptions replay the runs changed since a time
        sa.Index(f"ix_{table_name}_updated_id", "updated", "id"),
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


def extension_columns(table: sa.Table) -> list[sa.Column[object]]:
    """The columns of ``table`` that TaskDbPlugin's table lacks."""
    return [c for c in table.columns if c.name not in LEGACY_COLUMNS]
