"""Stream tables: categories, streams (a creator's channel with its secret key) and broadcasts
(one row per time a stream went live)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base, Timestamped, UUIDPrimaryKey


class StreamStatus(StrEnum):
    OFFLINE = "offline"
    LIVE = "live"


class Category(UUIDPrimaryKey, Timestamped, Base):
    """A browsing category (music, gaming, radio …), managed by admins; never deleted, only deactivated."""

    __tablename__ = "category"
    __table_args__ = (Index("ix_category_is_active_position", "is_active", "position"),)

    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(500), default="")
    position: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)


class Stream(UUIDPrimaryKey, Timestamped, Base):
    """A creator's channel: what viewers find and follow; it is live while a broadcast is open."""

    __tablename__ = "stream"
    __table_args__ = (
        CheckConstraint("viewer_count >= 0", name="viewer_count_nonnegative"),
        CheckConstraint("like_count >= 0", name="like_count_nonnegative"),
        CheckConstraint("status IN ('offline', 'live')", name="status_valid"),
        # The live listing: ?sort=viewers (default) and ?sort=recent keysets.
        Index("ix_stream_status_viewer_count_id", "status", "viewer_count", "id"),
        Index("ix_stream_status_started_at_id", "status", "started_at", "id"),
        Index("ix_stream_category_id", "category_id"),
        Index("ix_stream_language", "language"),
        Index("ix_stream_region", "region"),
        # A creator's streams, newest first.
        Index("ix_stream_owner_id_created_at_id", "owner_id", "created_at", "id"),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(140))
    description: Mapped[str] = mapped_column(String(2000), default="")
    category_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("category.id", ondelete="SET NULL"))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Topics found in the title and description (halobuzz.ai.tags), kept apart from the creator's tags.
    auto_tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # A creator-uploaded cover image (checked against the image blocklist), in public storage.
    thumbnail_key: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(16), default="en")
    audio_only: Mapped[bool] = mapped_column(default=False)
    region: Mapped[str] = mapped_column(String(16), default="global")
    scheduled_start_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=StreamStatus.OFFLINE.value)
    # sha256 of the secret key (core.security.token_hash); the key itself is never stored.
    stream_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_rotated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The open broadcast while live. No foreign key: stream and broadcast would reference each
    # other; the service sets and clears it in the transaction that opens and closes the broadcast.
    current_broadcast_id: Mapped[uuid.UUID | None]
    # When the open broadcast started (null while offline): the ?sort=recent keyset.
    started_at: Mapped[datetime | None]
    viewer_count: Mapped[int] = mapped_column(default=0)
    like_count: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]


class Broadcast(UUIDPrimaryKey, Timestamped, Base):
    """One go-live of a stream, from start to end."""

    __tablename__ = "broadcast"
    __table_args__ = (
        CheckConstraint("peak_viewers >= 0", name="peak_viewers_nonnegative"),
        CheckConstraint("duration_seconds >= 0", name="duration_seconds_nonnegative"),
        Index("ix_broadcast_stream_id_started_at_id", "stream_id", "started_at", "id"),
        # At most one open broadcast per stream, whatever races.
        Index(
            "ix_broadcast_one_open_per_stream",
            "stream_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    peak_viewers: Mapped[int] = mapped_column(default=0)
    duration_seconds: Mapped[int | None]
    # The stream's title when the broadcast started.
    title: Mapped[str] = mapped_column(String(140))
