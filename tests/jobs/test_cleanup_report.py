"""The 03:00 cleanup and the 04:00 daily report, run as the scheduler runs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from halobuzz.accounts.models import OneTimeToken
from halobuzz.app import HaloBuzzApp
from halobuzz.core import events
from halobuzz.core.clock import utcnow
from halobuzz.core.events import OutboxEvent, ProcessedEvent, Relay
from halobuzz.jobs import analytics, cleanup
from tests.jobs.test_scheduler import _admin


async def test_cleanup_deletes_only_what_is_past_retention(app: HaloBuzzApp, make_user: Any) -> None:
    user = await make_user()
    async with app.runtime.db.session() as s:
        events.emit(s, "test.cleanup", {})
        s.add(
            OneTimeToken(
                user_id=user.id, purpose="verify_email", token_hash="a" * 64, expires_at=utcnow() - timedelta(hours=1)
            )
        )
    await Relay(app.runtime).run_once()
    later = utcnow() + timedelta(days=40)  # past retention and past the session lifetime
    first = await cleanup.cleanup(app.runtime, scheduled_for=utcnow())
    assert first["outbox_events"] == 0 and first["one_time_tokens"] == 1
    result = await cleanup.cleanup(app.runtime, scheduled_for=later)
    assert result["outbox_events"] == 1
    assert result["one_time_tokens"] == 0
    assert result["sessions"] >= 1  # make_user's session expired by then
    again = await cleanup.cleanup(app.runtime, scheduled_for=later)
    assert again["outbox_events"] == 0 and again["sessions"] == 0
    async with app.runtime.db.session(write=False) as s:
        assert await s.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        assert await s.scalar(select(func.count()).select_from(ProcessedEvent)) == 0


async def test_daily_report_is_stored_and_readable(app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any) -> None:
    await make_user()
    await make_user()
    now = utcnow()
    result = await analytics.daily_report(app.runtime, scheduled_for=now + timedelta(days=1))
    assert result["new_users"] >= 2
    assert result["broadcasts"] == 0 and result["gifts"] == 0 and result["purchases"] == []
    # Running again for the same day replaces the row (idempotent per day).
    await analytics.daily_report(app.runtime, scheduled_for=now + timedelta(days=1))
    admin = await _admin(app)
    r = await client.get("/api/v1/admin/reports/daily", params={"date": result["date"]}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["new_users"] == result["new_users"] + 0
    r = await client.get("/api/v1/admin/reports/daily", params={"date": "2001-01-01"}, headers=admin)
    assert r.status_code == 404
    r = await client.get("/api/v1/admin/reports/daily", params={"date": "nope"}, headers=admin)
    assert r.status_code == 422


def test_report_day_is_the_local_day_before() -> None:
    assert datetime(2026, 3, 1, 17, 0, tzinfo=UTC).astimezone(analytics.ZoneInfo("Australia/Sydney")).day == 2


async def test_cleanup_purges_notifications_and_their_marks_past_retention(app: HaloBuzzApp, make_user: Any) -> None:
    from datetime import date

    from halobuzz.core.ids import uuid7
    from halobuzz.notifications.models import FanoutChunk, Notification, NotificationDelivery, NotificationDigest

    user = await make_user()
    now = utcnow()
    old = now - timedelta(days=120)
    async with app.runtime.db.session() as s:
        for key, created in (("old", old), ("new", now)):
            s.add(Notification(recipient_id=user.id, type="new_follower", data={}, dedupe_key=key, created_at=created))
        digest = NotificationDigest(user_id=user.id, local_date=date(2026, 8, 1), item_count=1, created_at=old)
        s.add(digest)
        for key, status, created in (
            ("old-sent", "sent", old),
            ("old-pending", "pending", old),
            ("new-sent", "sent", now),
        ):
            s.add(
                NotificationDelivery(
                    user_id=user.id,
                    source_key=key,
                    type="new_follower",
                    data={},
                    channel="email",
                    target="email",
                    status=status,
                    next_attempt_at=created,
                    created_at=created,
                )
            )
        s.add(FanoutChunk(source_event_id=uuid7(), chunk=0, recipients=1, created_at=old))
        s.add(FanoutChunk(source_event_id=uuid7(), chunk=0, recipients=1, created_at=now))
    result = await cleanup.cleanup(app.runtime, scheduled_for=now)
    assert result["notifications"] == 1
    assert result["notification_deliveries"] == 1
    assert result["notification_digests"] == 1
    assert result["fanout_marks"] == 1
    async with app.runtime.db.session(write=False) as s:
        keys = set((await s.execute(select(NotificationDelivery.source_key))).scalars())
        assert keys == {"old-pending", "new-sent"}  # a delivery still to be attempted is kept
        assert await s.scalar(select(func.count()).select_from(Notification)) == 1
        assert await s.scalar(select(func.count()).select_from(FanoutChunk)) == 1
    again = await cleanup.cleanup(app.runtime, scheduled_for=now)
    assert again["notifications"] == again["notification_deliveries"] == again["fanout_marks"] == 0


async def test_cleanup_drops_tally_hours_older_than_the_throne_window(app: HaloBuzzApp, make_user: Any) -> None:
    from halobuzz.economy.models import GiftTally
    from halobuzz.streams.models import Stream

    owner, fan = await make_user(), await make_user()
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    async with app.runtime.db.session() as s:
        stream = Stream(owner_id=owner.id, title="tally", stream_key_hash="t" * 64)
        s.add(stream)
        await s.flush()
        for hours_ago in (1, 24, 26, 48):
            at = now - timedelta(hours=hours_ago)
            s.add(GiftTally(stream_id=stream.id, sender_id=fan.id, hour=at, coins=1, last_at=at))
    result = await cleanup.cleanup(app.runtime, scheduled_for=now)
    assert result["gift_tally_hours"] == 2  # 26 and 48 hours ago: before the 24 h window
    assert (await cleanup.cleanup(app.runtime, scheduled_for=now))["gift_tally_hours"] == 0
    async with app.runtime.db.session(write=False) as s:
        assert await s.scalar(select(func.count()).select_from(GiftTally)) == 2


async def test_cleanup_drops_gift_velocity_slots_older_than_an_hour(app: HaloBuzzApp, make_user: Any) -> None:
    from halobuzz.economy.fraud import GiftVelocity

    fan = await make_user()
    now = utcnow().replace(second=0, microsecond=0)
    async with app.runtime.db.session() as s:
        for minutes_ago in (1, 59, 61, 600):
            s.add(GiftVelocity(sender_id=fan.id, slot=now - timedelta(minutes=minutes_ago), gifts=1, coins=1))
    result = await cleanup.cleanup(app.runtime, scheduled_for=now)
    assert result["gift_velocity_slots"] == 2
    assert (await cleanup.cleanup(app.runtime, scheduled_for=now))["gift_velocity_slots"] == 0
    async with app.runtime.db.session(write=False) as s:
        assert await s.scalar(select(func.count()).select_from(GiftVelocity)) == 2
