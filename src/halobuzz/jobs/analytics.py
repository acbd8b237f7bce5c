"""04:00 daily report: one stored row per local day (JOBS_TIMEZONE) of platform activity."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Date, func, select
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.accounts.models import User
from halobuzz.chat.models import ChatMessage
from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base
from halobuzz.core.ids import uuid7
from halobuzz.economy.models import GiftSent
from halobuzz.payments.models import PaymentIntent
from halobuzz.streams.models import Broadcast

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime


class DailyReport(Base):
    """The activity of one local day; recomputed (upserted) if the job runs again for that day."""

    __tablename__ = "daily_report"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    day: Mapped[date] = mapped_column(Date, unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


async def compute(runtime: Runtime, *, day: date) -> dict[str, Any]:
    """The counts of ``day`` (local midnight to midnight)."""
    tz = ZoneInfo(runtime.settings.jobs.timezone)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    async with runtime.db.session(write=False) as s:
        new_users = await s.scalar(select(func.count()).where(User.created_at >= start, User.created_at < end))
        broadcasts = await s.scalar(
            select(func.count()).where(Broadcast.started_at >= start, Broadcast.started_at < end)
        )
        messages = await s.scalar(
            select(func.count()).where(ChatMessage.created_at >= start, ChatMessage.created_at < end)
        )
        gift_row = (
            await s.execute(
                select(func.count(), func.coalesce(func.sum(GiftSent.coins), 0)).where(
                    GiftSent.created_at >= start, GiftSent.created_at < end
                )
            )
        ).one()
        purchases = (
            await s.execute(
                select(
                    PaymentIntent.provider,
                    PaymentIntent.currency,
                    func.count(),
                    func.sum(PaymentIntent.amount),
                    func.sum(PaymentIntent.coins),
                )
                .where(
                    PaymentIntent.status == "succeeded",
                    PaymentIntent.created_at >= start,
                    PaymentIntent.created_at < end,
                )
                .group_by(PaymentIntent.provider, PaymentIntent.currency)
                .order_by(PaymentIntent.provider, PaymentIntent.currency)
            )
        ).all()
    return {
        "date": day.isoformat(),
        "timezone": runtime.settings.jobs.timezone,
        "new_users": int(new_users or 0),
        "broadcasts": int(broadcasts or 0),
        "messages": int(messages or 0),
        "gifts": int(gift_row[0] or 0),
        "gift_coins": int(gift_row[1] or 0),
        "purchases": [
            {"provider": p, "currency": c, "count": int(n), "amount": int(a or 0), "coins": int(k or 0)}
            for p, c, n, a, k in purchases
        ],
    }


async def daily_report(runtime: Runtime, *, scheduled_for: datetime) -> dict[str, Any]:
    """Store the report of the local day before ``scheduled_for``; running again replaces it."""
    tz = ZoneInfo(runtime.settings.jobs.timezone)
    day = (scheduled_for.astimezone(tz) - timedelta(days=1)).date()
    data = await compute(runtime, day=day)
    async with runtime.db.session() as s:
        row = await s.scalar(select(DailyReport).where(DailyReport.day == day).with_for_update())
        if row is None:
            s.add(DailyReport(day=day, data=data, created_at=utcnow()))
        else:
            row.data = data
        await s.flush()
    return data


async def get_report(runtime: Runtime, *, day: date) -> DailyReport | None:
    """The stored report of ``day``, if the job has produced it."""
    async with runtime.db.session(write=False) as s:
        return await s.scalar(select(DailyReport).where(DailyReport.day == day))
