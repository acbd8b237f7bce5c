"""The daily email digest: one mail a day instead of one per notification (users who chose it).

Email deliveries of digest users are held as ``digest``. This job (every 15 minutes, so each user's
digest leaves close to ``NOTIFICATIONS_DIGEST_HOUR`` in their own timezone, Nepal's +05:45
included) makes, for each user whose local time is past that hour and who has held items, one
``notification_digest`` row per local date (unique: a second run the same day sends nothing) and
one email delivery carrying the items; the held rows become ``digested``. The mail itself goes
through the email channel's queue like any other (backoff included).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from halobuzz.accounts.models import User
from halobuzz.core.clock import utcnow
from halobuzz.core.ids import uuid7
from halobuzz.notifications import catalog
from halobuzz.notifications.dispatch import wake_all
from halobuzz.notifications.models import NotificationDelivery, NotificationDigest
from halobuzz.notifications.templates import zone_of

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

# Items in one digest mail at most (the rest wait for the next day's).
MAX_ITEMS = 200


async def send_digests(runtime: Runtime, *, scheduled_for: datetime) -> dict[str, Any]:
    """Queue today's digest of every user who is due one; idempotent per user and local date."""
    hour = runtime.settings.notifications.digest_hour
    async with runtime.db.session(write=False) as s:
        user_ids = list(
            await s.scalars(
                select(NotificationDelivery.user_id)
                .where(NotificationDelivery.channel == catalog.EMAIL, NotificationDelivery.status == "digest")
                .distinct()
            )
        )
    digests = items = 0
    for start in range(0, len(user_ids), 500):
        batch = user_ids[start : start + 500]
        async with runtime.db.session(write=False) as s:
            zones = {
                row.id: row.timezone
                for row in await s.execute(select(User.id, User.timezone).where(User.id.in_(batch)))
            }
        for user_id, timezone in zones.items():
            local = scheduled_for.astimezone(zone_of(timezone))
            if local.hour < hour:
                continue
            count = await _digest_for(runtime, user_id=user_id, local_date=local.date())
            if count:
                digests += 1
                items += count
    if digests:
        wake_all()
    return {"digests": digests, "items": items}


async def _digest_for(runtime: Runtime, *, user_id: Any, local_date: Any) -> int:
    now = utcnow()
    async with runtime.db.session() as s:
        insert = pg_insert if not runtime.db.is_sqlite else sqlite_insert
        digest_id = uuid7()
        claimed = await s.execute(
            insert(NotificationDigest)
            .values(id=digest_id, user_id=user_id, local_date=local_date, item_count=0, created_at=now)
            .on_conflict_do_nothing(index_elements=["user_id", "local_date"])
            .returning(NotificationDigest.id)
        )
        if claimed.first() is None:
            return 0  # today's digest went out already; what arrived since waits for tomorrow's
        held = list(
            await s.scalars(
                select(NotificationDelivery)
                .where(
                    NotificationDelivery.user_id == user_id,
                    NotificationDelivery.channel == catalog.EMAIL,
                    NotificationDelivery.status == "digest",
                )
                .order_by(NotificationDelivery.created_at, NotificationDelivery.id)
                .limit(MAX_ITEMS)
            )
        )
        if not held:
            await s.rollback()
            return 0
        s.add(
            NotificationDelivery(
                id=uuid7(),
                user_id=user_id,
                source_key=f"digest:{digest_id}",
                type="digest",
                data={
                    "items": [{"type": h.type, "data": h.data, "created_at": h.created_at.isoformat()} for h in held]
                },
                notification_id=None,
                digest_id=digest_id,
                channel=catalog.EMAIL,
                target=catalog.EMAIL,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        await s.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id.in_([h.id for h in held]))
            .values(status="digested", digest_id=digest_id)
            .execution_options(synchronize_session=False)
        )
        await s.execute(
            update(NotificationDigest)
            .where(NotificationDigest.id == digest_id)
            .values(item_count=len(held))
            .execution_options(synchronize_session=False)
        )
    return len(held)
