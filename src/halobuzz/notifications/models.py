"""Notification tables: stored notifications, per-user settings, push targets, channel deliveries,
email digests and the fan-out chunk marks that keep a redelivered chunk from running twice."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base
from halobuzz.core.ids import uuid7


class Notification(Base):
    """One notification for one recipient; ``dedupe_key`` names its source (one per recipient)."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("recipient_id", "dedupe_key"),
        Index("ix_notification_recipient_id_id", "recipient_id", "id"),
        Index("ix_notification_recipient_id_read_at", "recipient_id", "read_at"),
        Index("ix_notification_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    recipient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[uuid.UUID | None]
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]


class NotificationSettings(Base):
    """A user's choices; a user without a row has the defaults (docs/notifications.md)."""

    __tablename__ = "notification_settings"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    # Only what differs from the defaults: {type: {channel: bool}}.
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Local wall times "HH:MM" in the user's timezone; both set or both unset.
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    email_digest: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebPushSubscription(Base):
    """A browser's push subscription (PushSubscription.toJSON()); the endpoint is unique."""

    __tablename__ = "web_push_subscription"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MobileDevice(Base):
    """A mobile app's FCM registration token; removed when FCM says it is no longer registered."""

    __tablename__ = "mobile_device"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(4096))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationDelivery(Base):
    """One notification (or one digest) on one channel to one target: the channel queue row.

    ``pending`` rows are due at ``next_attempt_at`` (later for quiet hours and backoff); a row ends
    ``sent``, ``failed`` (after its last attempt or a permanent refusal), ``cancelled`` (its target
    is gone), or — email in digest mode — ``digest`` (held) then ``digested``.
    """

    __tablename__ = "notification_delivery"
    __table_args__ = (
        UniqueConstraint("user_id", "source_key", "channel", "target"),
        Index("ix_notification_delivery_due", "channel", "status", "next_attempt_at"),
        Index("ix_notification_delivery_notification_id", "notification_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    # The notification's dedupe key (or ``digest:<id>``): one delivery per source, channel and target.
    source_key: Mapped[str] = mapped_column(String(100))
    # What to render (kept here too: with in-app off there is no stored notification).
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The stored notification, when in-app was on (deleting it leaves the delivery record).
    notification_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("notification.id", ondelete="SET NULL"))
    digest_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("notification_digest.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    # What it goes to: a subscription or device id, or the channel name for email/SMS.
    target: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    # Set when quiet hours held the delivery back (the end of the quiet hours, UTC).
    held_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class NotificationDigest(Base):
    """One daily email digest of one user (unique per local date)."""

    __tablename__ = "notification_digest"
    __table_args__ = (UniqueConstraint("user_id", "local_date"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    local_date: Mapped[date] = mapped_column(Date)
    item_count: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FanoutChunk(Base):
    """A fan-out chunk already written: a redelivered chunk event finds its mark and does nothing."""

    __tablename__ = "notification_fanout_chunk"

    source_event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    chunk: Mapped[int] = mapped_column(primary_key=True)
    recipients: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
