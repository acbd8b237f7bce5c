"""Chat tables: messages (written in batches by the gateway), per-stream chat modes, channel
moderators, and bans/timeouts."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base


class MessageStatus(StrEnum):
    VISIBLE = "visible"
    # Stopped by the moderation hook before delivery; only a reviewer sees it.
    HELD = "held"
    DELETED = "deleted"


class ChatMessage(Base):
    """One chat message in a stream's room, with its place in the room's (epoch, seq) order."""

    __tablename__ = "chat_message"
    __table_args__ = (
        CheckConstraint("status IN ('visible', 'held', 'deleted')", name="status_valid"),
        CheckConstraint("seq >= 0", name="seq_nonnegative"),
        # History pages: a stream's messages by (created_at, id), newest first.
        Index("ix_chat_message_stream_id_created_at_id", "stream_id", "created_at", "id"),
        Index("ix_chat_message_user_id_created_at", "user_id", "created_at"),
    )

    # Assigned by the gateway (uuid7) before the row is written, so clients can refer to it at once.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"))
    broadcast_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("broadcast.id", ondelete="SET NULL"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(500))
    # Held messages were never placed in the room's order: epoch "" and seq 0.
    epoch: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.VISIBLE.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]
    deleted_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class ChatMode(Base):
    """A stream's chat modes; no row means every mode is off."""

    __tablename__ = "chat_mode"
    __table_args__ = (
        CheckConstraint("slow_mode_seconds >= 0", name="slow_mode_nonnegative"),
        CheckConstraint(
            "followers_only_minutes IS NULL OR followers_only_minutes >= 0", name="followers_only_nonnegative"
        ),
    )

    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"), primary_key=True)
    # 0: off; N: each non-moderator may send one message every N seconds.
    slow_mode_seconds: Mapped[int] = mapped_column(default=0)
    # None: off; N: only users who have followed the owner for at least N minutes may send.
    followers_only_minutes: Mapped[int | None]
    subscribers_only: Mapped[bool] = mapped_column(default=False)
    emote_only: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class ChatModerator(Base):
    """A user the stream's owner appointed to moderate its chat."""

    __tablename__ = "chat_moderator"

    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    appointed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatBan(Base):
    """A user barred from a stream's chat: until a time (a timeout) or for good (``until`` null)."""

    __tablename__ = "chat_ban"
    __table_args__ = (Index("ix_chat_ban_stream_id_created_at", "stream_id", "created_at"),)

    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    until: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
