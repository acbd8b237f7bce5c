"""Migrations and models agree: upgrading an empty database gives exactly the models' schema,
and the whole chain downgrades and upgrades again."""

from __future__ import annotations

import asyncio
import os
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from halobuzz import models
from halobuzz.core import migrate


async def _fresh_database(tmp_path) -> tuple[str, object]:
    base = os.environ.get("DATABASE_URL")
    if not base:
        return f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}", None
    name = f"hb_mig_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(make_url(base).set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))

    async def drop() -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    return make_url(base).set(database=name).render_as_string(hide_password=False), drop


def _diff(sync_conn):
    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return compare_metadata(ctx, models.Base.metadata)


async def test_migrations_match_models_and_round_trip(tmp_path):
    url, drop = await _fresh_database(tmp_path)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
        assert diff == [], f"models and migrations disagree; generate a migration: {diff}"
        await asyncio.to_thread(migrate.downgrade, url, "base")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
        assert set(tables) <= {"alembic_version"}, tables
        await asyncio.to_thread(migrate.upgrade, url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
        await engine.dispose()
    finally:
        if drop:
            await drop()
