"""Thrones read window sums from the hourly gift tally: the same holder as summing every gift, also
when the holder's own gifts leave the window, at the window's partial first hour, and for gifts
sent before the tally existed (migration 0012)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from halobuzz.accounts.models import User
from halobuzz.core import migrate
from halobuzz.core.db import Database
from halobuzz.economy import thrones
from halobuzz.economy.models import Gift, GiftSent, GiftTally, LedgerTransaction, StreamThrone
from halobuzz.streams.models import Stream
from tests.core.test_migrations import _fresh_database
from tests.economy.conftest import grant_coins
from tests.economy.test_thrones import age_gifts, send

API = "/api/v1"


async def test_throne_passes_on_when_the_holders_gifts_leave_the_window(app, client, make_user, make_gift, live_stream):
    """The holder's gifts age out; a later small gift by someone else must not take the throne
    from a sender who gave more within the window but sent nothing since."""
    owner = await make_user(roles=["creator"])
    stream_id = await live_stream(owner)
    gift = await make_gift(coin_price=1)
    top, second, late = await make_user(), await make_user(), await make_user()
    for user in (top, second, late):
        await grant_coins(app, user.id, 100)
    assert (await send(client, top, stream_id, gift["id"], 10)).status_code == 200
    assert (await send(client, second, stream_id, gift["id"], 5)).status_code == 200
    async with app.runtime.db.session(write=False) as s:
        throne = await s.get(StreamThrone, uuid.UUID(stream_id))
    assert throne is not None and throne.holder_id == top.id and throne.coins == 10
    await age_gifts(app, 25, top.id)
    assert (await send(client, late, stream_id, gift["id"], 1)).status_code == 200
    async with app.runtime.db.session(write=False) as s:
        throne = await s.get(StreamThrone, uuid.UUID(stream_id))
    assert throne is not None and throne.holder_id == second.id and throne.coins == 5
    got = (await client.get(f"{API}/streams/{stream_id}/throne")).json()
    assert got["holder"]["id"] == str(second.id) and got["coins"] == 5
    # The new sender overtakes once they gave more; the tally has their two gifts in one row.
    assert (await send(client, late, stream_id, gift["id"], 5)).status_code == 200
    got = (await client.get(f"{API}/streams/{stream_id}/throne")).json()
    assert got["holder"]["id"] == str(late.id) and got["coins"] == 6
    async with app.runtime.db.session(write=False) as s:
        rows = (await s.execute(select(GiftTally.coins).where(GiftTally.sender_id == late.id))).scalars().all()
    assert sum(rows) == 6 and len(rows) <= 2  # two rows only if the gifts straddled an hour


async def test_window_sums_count_the_partial_first_hour_from_the_gifts(app, make_user, make_gift, live_stream):
    owner = await make_user(roles=["creator"])
    stream_id = uuid.UUID(await live_stream(owner))
    gift = await make_gift(coin_price=1)
    early, inside, later = await make_user(), await make_user(), await make_user()
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    window = timedelta(hours=24)
    since = now - window  # 12:00 the day before
    # early: 20 coins just before the window opens, in the same hour bucket as inside's gift
    # inside: 15 coins in the window's first (partial) hour
    # later: 12 coins in a whole hour of the window
    sent = [
        (early, 20, since - timedelta(minutes=1)),
        (inside, 15, since + timedelta(minutes=30)),
        (later, 12, now - timedelta(hours=2)),
    ]
    async with app.runtime.db.session() as s:
        for i, (user, coins, at) in enumerate(sent):
            tx = LedgerTransaction(kind="gift", actor_id=user.id, idempotency_key=f"t{i}", meta={})
            s.add(tx)
            await s.flush()
            s.add(
                GiftSent(
                    created_at=at,
                    transaction_id=tx.id,
                    stream_id=stream_id,
                    broadcast_id=None,
                    sender_id=user.id,
                    receiver_id=owner.id,
                    gift_id=uuid.UUID(gift["id"]),
                    quantity=coins,
                    coins=coins,
                )
            )
            await s.flush()
            change = await thrones.update_throne(
                session=s,
                stream_id=stream_id,
                window=window,
                now=now,
                gifts=[thrones.NewGift(user.id, coins, at)],
            )
    assert change is None  # the last gift (12) did not overtake inside's 15
    async with app.runtime.db.session(write=False) as s:
        top = await thrones.top_gifter(session=s, stream_id=stream_id, since=since)
        throne = await s.get(StreamThrone, stream_id)
        buckets = (await s.execute(select(GiftTally.hour, GiftTally.coins).order_by(GiftTally.hour))).all()
    assert top is not None and top.user_id == inside.id and top.coins == 15
    assert throne is not None and throne.holder_id == inside.id and throne.coins == 15
    assert buckets[0] == (datetime(2026, 12, 2, 11, 0, tzinfo=UTC), 20)
    assert buckets[1] == (datetime(2026, 12, 2, 12, 0, tzinfo=UTC), 15)


async def test_migration_tallies_the_gifts_already_sent(tmp_path):
    url, drop = await _fresh_database(tmp_path)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url)
        at = datetime(2026, 12, 1, 9, 15, tzinfo=UTC)
        async with db.session() as s:
            users = [
                User(
                    username=f"m{i}",
                    username_key=f"m{i}",
                    email=f"m{i}@example.com",
                    password_hash="x",
                    display_name=f"m{i}",
                )
                for i in range(2)
            ]
            s.add_all(users)
            await s.flush()
            stream = Stream(owner_id=users[0].id, title="old gifts", stream_key_hash="x" * 64)
            gift = Gift(name="old-rose", coin_price=3)
            s.add_all([stream, gift])
            await s.flush()
            for i, minutes in enumerate((0, 30, 70)):
                tx = LedgerTransaction(kind="gift", actor_id=users[1].id, idempotency_key=f"m{i}", meta={})
                s.add(tx)
                await s.flush()
                s.add(
                    GiftSent(
                        created_at=at + timedelta(minutes=minutes),
                        transaction_id=tx.id,
                        stream_id=stream.id,
                        broadcast_id=None,
                        sender_id=users[1].id,
                        receiver_id=users[0].id,
                        gift_id=gift.id,
                        quantity=1,
                        coins=3,
                    )
                )
        await db.dispose()
        await asyncio.to_thread(migrate.downgrade, url, "0011")
        await asyncio.to_thread(migrate.upgrade, url)
        engine = create_async_engine(url)
        db = Database(url)
        async with db.session(write=False) as s:
            rows = (
                await s.execute(select(GiftTally.hour, GiftTally.coins, GiftTally.last_at).order_by(GiftTally.hour))
            ).all()
        await db.dispose()
        await engine.dispose()
        assert rows == [
            (datetime(2026, 12, 1, 9, 0, tzinfo=UTC), 6, at + timedelta(minutes=30)),
            (datetime(2026, 12, 1, 10, 0, tzinfo=UTC), 3, at + timedelta(minutes=70)),
        ]
    finally:
        if drop:
            await drop()
