"""Moderation tables: cases (reports folded per target), reports, actions, appeals, reputation events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base, UTCDateTime
from halobuzz.core.ids import uuid7


class ModerationCase(Base):
    """One target under review; every report of the same target while open folds into it."""

    __tablename__ = "moderation_case"
    __table_args__ = (Index("ix_moderation_case_queue", "status", "priority"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[str] = mapped_column(String(64))
    # "type:id" while open, NULL once closed: at most one open case per target (NULLs are distinct).
    open_key: Mapped[str | None] = mapped_column(String(96), unique=True)
    subject_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | claimed | closed
    priority: Mapped[int] = mapped_column(Integer, default=0)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    ai_score: Mapped[int] = mapped_column(Integer, default=0)  # percent
    claimed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ModerationReport(Base):
    __tablename__ = "moderation_report"
    __table_args__ = (UniqueConstraint("case_id", "reporter_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("moderation_case.id", ondelete="CASCADE"), index=True)
    reporter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))
    details: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModerationAction(Base):
    """A decision on a case (or on an appeal): who, what, why, when; reversible once by an appeal."""

    __tablename__ = "moderation_action"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("moderation_case.id", ondelete="CASCADE"), index=True)
    subject_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    moderator_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    duration_days: Mapped[int | None] = mapped_column(Integer)
    # timeout: minutes; mute: the stream; remove_content: what was removed (so a reversal restores it).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ModerationAppeal(Base):
    __tablename__ = "moderation_appeal"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    # One appeal per action.
    action_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("moderation_action.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | upheld | reversed
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReputationEvent(Base):
    """A change of a user's reputation; the score is 100 plus the sum of deltas, clamped to 0..100."""

    __tablename__ = "reputation_event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(64))
    action_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("moderation_action.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelBlockedTerm(Base):
    """A word or phrase a creator does not allow in their channels' chat (their streams)."""

    __tablename__ = "channel_blocked_term"
    __table_args__ = (UniqueConstraint("owner_id", "term_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    term: Mapped[str] = mapped_column(String(100))
    # The normalized form (casefolded, leetspeak undone): what uniqueness and matching use.
    term_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImageBlock(Base):
    """A known-bad image, by its perceptual hashes (pHash, dHash: 16 hex digits each)."""

    __tablename__ = "image_block"
    __table_args__ = (UniqueConstraint("phash", "dhash"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    phash: Mapped[str] = mapped_column(String(16))
    dhash: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
