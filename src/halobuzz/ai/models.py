"""Engagement samples of live streams (one per stream per minute) and the hints sent to creators."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base, UTCDateTime
from halobuzz.core.ids import uuid7


class EngagementSample(Base):
    __tablename__ = "engagement_sample"
    __table_args__ = (UniqueConstraint("stream_id", "at"), Index("ix_engagement_sample_at", "at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"))
    broadcast_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("broadcast.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    viewers: Mapped[int] = mapped_column(Integer)
    messages: Mapped[int] = mapped_column(Integer)
    mood: Mapped[float | None] = mapped_column(Float)


class EngagementHint(Base):
    """A hint sent to a stream's owner (also what keeps hints apart by the cooldown)."""

    __tablename__ = "engagement_hint"
    __table_args__ = (Index("ix_engagement_hint_stream_id_created_at", "stream_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"))
    broadcast_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("broadcast.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32))
    hint: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
