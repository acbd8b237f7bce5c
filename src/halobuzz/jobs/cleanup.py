"""03:00 cleanup: expired sessions and tokens, delivered outbox rows, old processed-event marks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, inspect, or_
from sqlalchemy.engine import CursorResult

from halobuzz.accounts.models import AuthSession, OneTimeToken, RefreshToken
from halobuzz.core.events import OutboxEvent, ProcessedEvent

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime


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
        has_notifications = await s.run_sync(lambda sync: inspect(sync.connection()).has_table("notification"))
        if has_notifications:
            from halobuzz.core.db import Base

            table = Base.metadata.tables.get("notification")
            if isinstance(table, Table) and "created_at" in table.c:
                n_cutoff = scheduled_for - timedelta(days=jobs.notification_retention_days)
                counts["notifications"] = _count(await s.execute(delete(table).where(table.c.created_at < n_cutoff)))
    return counts
