"""Creating and upgrading the history table: idempotent DDL, serialised.

Workers call ``create_tables`` as they start, so several processes may run
it at once: PostgreSQL's catalog checks are not atomic with the ``CREATE``
(two creators of one enum type clash on ``pg_type_typname_nsp_index``), so
each call first takes a transaction-level advisory lock, one per database as
tables of any name share the ``taskstate`` type, and the others wait for it,
then find everything in place.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .tables import all_indexes, extension_columns

logger = logging.getLogger(__name__)

#: The name hashed into the advisory-lock key of gql_history's DDL.
_DDL_LOCK = "gql_history:ddl"


async def column_names(engine: AsyncEngine, table: sa.Table) -> frozenset[str]:
    """The columns ``table`` has in the database; raises ``NoSuchTableError``."""
    async with engine.connect() as conn:
        return await _column_names(conn, table)


async def create_tables(engine: AsyncEngine, table: sa.Table) -> None:
    """Create ``table``, its enum type and indexes where missing."""
    async with engine.begin() as conn:
        await lock_ddl(conn)
        await _create(conn, table)


async def upgrade_tables(engine: AsyncEngine, table: sa.Table) -> list[str]:
    """Create ``table`` if missing, else add gql_history's columns and indexes
    to it (a TaskDbPlugin table); return the names of the columns added."""
    async with engine.begin() as conn:
        await lock_ddl(conn)
        await conn.run_sync(table.create, checkfirst=True)
        await _create_side_tables(conn, table)
        present = await _column_names(conn, table)
        missing = [c for c in extension_columns(table) if c.name not in present]
        name = conn.dialect.identifier_preparer.format_table(table)
        for column in missing:
            ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            await conn.execute(
                sa.text(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {ddl}")
            )
        await _create_indexes(conn, table)
    return [c.name for c in missing]


async def lock_ddl(conn: AsyncConnection) -> None:
    """Wait for the DDL lock, held until ``conn``'s transaction ends."""
    key = sa.func.hashtextextended(sa.literal(_DDL_LOCK), 0)
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


async def _create(conn: AsyncConnection, table: sa.Table) -> None:
    await conn.run_sync(table.create, checkfirst=True)
    await _create_side_tables(conn, table)
    await _create_indexes(conn, table)


async def _create_side_tables(conn: AsyncConnection, table: sa.Table) -> None:
    """The workers and retention tables beside ``table``, where missing."""
    for side in table.info.get("side_tables", ()):
        await conn.run_sync(side.create, checkfirst=True)


async def _column_names(conn: AsyncConnection, table: sa.Table) -> frozenset[str]:
    names = await conn.run_sync(
        lambda sync_conn: [
            column["name"]
            for column in sa.inspect(sync_conn).get_columns(
                table.name, schema=table.schema
            )
        ]
    )
    return frozenset(names)


async def has_extension(engine: AsyncEngine, name: str) -> bool:
    """Whether the extension ``name`` is installed in the database."""
    async with engine.connect() as conn:
        return await _has_extension(conn, name)


async def _has_extension(conn: AsyncConnection, name: str) -> bool:
    query = sa.text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = :n)")
    return bool((await conn.execute(query, {"n": name})).scalar())


async def _install_extensions(conn: AsyncConnection, names: set[str]) -> set[str]:
    """Of the extensions ``names``, those installed once this has tried to
    install the missing ones (which needs the privilege; else they stay out)."""
    installed = set()
    for name in sorted(names):
        if not await _has_extension(conn, name):
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        sa.text(f'CREATE EXTENSION IF NOT EXISTS "{name}"')
                    )
            except DBAPIError:
                logger.warning(
                    "PostgreSQL extension %s could not be installed: text search "
                    "stays unavailable until a superuser runs CREATE EXTENSION %s",
                    name,
                    name,
                )
                continue
        installed.add(name)
    return installed


async def _create_indexes(conn: AsyncConnection, table: sa.Table) -> None:
    """The indexes of ``table`` whose columns (and extension) it has: all,
    once upgraded, where the extensions can be installed."""
    present = await _column_names(conn, table)
    indexes = all_indexes(table)
    wanted = {index.info["extension"] for index in indexes if "extension" in index.info}
    extensions = await _install_extensions(conn, wanted)
    for index in indexes:
        if index.info.get("extension", None) not in {None, *extensions}:
            continue
        # a functional index lists its expressions' constants among columns
        if {c.name for c in index.columns if isinstance(c, sa.Column)} <= present:
            await conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
