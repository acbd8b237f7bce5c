"""Migration 0008 keeps users verified with the old KYC flag verified (as approved submissions), both ways."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from halobuzz.core import migrate
from halobuzz.core.clock import utcnow
from tests.core.test_migrations import _fresh_database


async def test_old_flag_becomes_an_approved_submission_and_back(tmp_path):
    url, drop = await _fresh_database(tmp_path)
    try:
        await asyncio.to_thread(migrate.upgrade, url, "0004")
        engine = create_async_engine(url)
        user_id, now = uuid.uuid4(), utcnow()
        columns = {
            "id": sa.Uuid(),
            "roles": sa.JSON(),
            "follower_count": sa.Integer(),
            "following_count": sa.Integer(),
            "created_at": sa.DateTime(timezone=True),
            "updated_at": sa.DateTime(timezone=True),
        }
        names = (
            "id",
            "username",
            "username_key",
            "email",
            "password_hash",
            "display_name",
            "bio",
            "language",
            "timezone",
            "roles",
            "creator_status",
            "status",
            "follower_count",
            "following_count",
            "created_at",
            "updated_at",
        )
        user = sa.table("user", *(sa.column(c, columns.get(c, sa.String())) for c in names))
        async with engine.begin() as conn:
            await conn.execute(
                user.insert().values(
                    id=user_id,
                    username="old",
                    username_key="old",
                    email="old@example.com",
                    password_hash="x",
                    display_name="old",
                    bio="",
                    language="en",
                    timezone="UTC",
                    roles=["user", "creator"],
                    creator_status="approved",
                    status="active",
                    follower_count=0,
                    following_count=0,
                    created_at=now.replace(tzinfo=None),
                    updated_at=now.replace(tzinfo=None),
                )
            )
            kyc = sa.table(
                "user_kyc",
                sa.column("user_id", sa.Uuid()),
                sa.column("verified", sa.Boolean()),
                sa.column("updated_at", sa.DateTime(timezone=True)),
            )
            await conn.execute(kyc.insert().values(user_id=user_id, verified=True, updated_at=now.replace(tzinfo=None)))
        await engine.dispose()
        await asyncio.to_thread(migrate.upgrade, url, "0008")
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT status, reason FROM kyc_submission"))).all()
        await engine.dispose()
        assert [r.status for r in rows] == ["approved"] and "before document review" in rows[0].reason
        await asyncio.to_thread(migrate.downgrade, url, "0004")
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            flags = (await conn.execute(sa.text("SELECT verified FROM user_kyc"))).all()
        await engine.dispose()
        assert [bool(f.verified) for f in flags] == [True]
    finally:
        if drop is not None:
            await drop()  # type: ignore[operator]
