from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_history.db.store import HistoryStore
from gql_history.db.tables import history_table


@pytest.fixture
async def empty_store(engine: AsyncEngine, fresh_table: str) -> HistoryStore:
    """A store of the module's table, emptied with its side tables (workers,
    retention horizon) before each test."""
    store = HistoryStore(engine, history_table(sa.MetaData(), fresh_table))
    await store.create_tables()
    async with engine.begin() as conn:
        for table in (store.table, *store.table.info["side_tables"]):
            await conn.execute(sa.delete(table))
    return store
