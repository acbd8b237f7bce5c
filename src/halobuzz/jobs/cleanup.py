"""03:00 cleanup: expired sessions and tokens, delivered outbox rows, old processed-event marks,
notifications past their retention with their finished deliveries, digests and fan-out marks,
gift tally hours that ended before the throne window, and gift velocity slots over an hour old."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_
from sqlalchemy.engine import CursorResult

from halobuzz.accounts.models import AuthSession, OneTimeToken, RefreshToken
from halobuzz.core.events import OutboxEvent, ProcessedEvent
from halobuzz.economy.fraud import GiftVelocity
from halobuzz.economy.models import GiftTally
from halobuzz.notifications.models import FanoutChunk, Notification, NotificationDelivery, NotificationDigest

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime


# Deliveries that will not be attempted again (pending and held digest rows stay).
_FINISHED = ("sent", "failed", "cancelled", "digested")


def _count(result: Any) -> int:
    return int(result.rowcount or 0) if isinstance(result, CursorResult) else 0


async def cleanup(runtime: Runtime, *, scheduled_for: datetime) -> dict[str, Any]:
    """Delete what has outlived its use; idempotent (a second run deletes nothing more)."""
    jobs = runtime.settings.jobs
    cutoff = scheduled_for - timedelta(days=jobs.retention_days)
    counts: dict[str, Any] = {}
    async with runtime.db.session() as s:
        counts["refresh_tokens"] = _count(await s.execute(delete(RefreshToken).where(RefreshToken.used_at < cutoff)))
        counts["sessions"] = _count(
            await s.execute(
                delete(AuthSession).where(or_(AuthSession.expires_at < scheduled_for, AuthSession.revoked_at < cutoff))
            )
        )
        counts["one_time_tokens"] = _count(
            await s.execute(
                delete(OneTimeToken).where(
                    or_(OneTimeToken.expires_at < scheduled_for, OneTimeToken.used_at.is_not(None))
                )
            )
        )
        counts["outbox_events"] = _count(await s.execute(delete(OutboxEvent).where(OutboxEvent.dispatched_at < cutoff)))
        counts["processed_events"] = _count(
            await s.execute(delete(ProcessedEvent).where(ProcessedEvent.processed_at < cutoff))
        )
        n_cutoff = scheduled_for - timedelta(days=jobs.notification_retention_days)
        counts["notifications"] = _count(
            await s.execute(delete(Notification).where(Notification.created_at < n_cutoff))
        )
        # Delivery rows and fan-out marks also stop duplicates of a redelivered event: keep them
        # while the event could still come again (its outbox row and processed mark live until
        # ``cutoff``), and while the notification is kept.
        marks_cutoff = min(cutoff, n_cutoff)
        counts["notification_deliveries"] = _count(
            await s.execute(
                delete(NotificationDelivery).where(
                    NotificationDelivery.status.in_(_FINISHED), NotificationDelivery.created_at < marks_cutoff
                )
            )
        )
        counts["notification_digests"] = _count(
            await s.execute(delete(NotificationDigest).where(NotificationDigest.created_at < n_cutoff))
        )
        counts["fanout_marks"] = _count(
            await s.execute(delete(FanoutChunk).where(FanoutChunk.created_at < marks_cutoff))
        )
        # A throne sums the tally's hours that start inside its window; older ones count no more.
        window = timedelta(hours=runtime.settings.economy.throne_window_hours)
        tally_cutoff = scheduled_for - window - timedelta(hours=1)
        counts["gift_tally_hours"] = _count(await s.execute(delete(GiftTally).where(GiftTally.hour < tally_cutoff)))
        # The velocity caps look back about a minute.
        velocity_cutoff = scheduled_for - timedelta(hours=1)
        counts["gift_velocity_slots"] = _count(
            await s.execute(delete(GiftVelocity).where(GiftVelocity.slot < velocity_cutoff))
        )
    return counts
