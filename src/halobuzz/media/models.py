"""Media tables: recordings (VOD) of broadcasts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.db import Base, Timestamped, UUIDPrimaryKey


class Recording(UUIDPrimaryKey, Timestamped, Base):
    """A finished broadcast stored as an HLS VOD under ``storage_prefix``."""

    __tablename__ = "media_recording"
    __table_args__ = (
        Index("ix_media_recording_stream_id_created_at_id", "stream_id", "created_at", "id"),
        # A creator's channel: every recording of every stream they own, newest first.
        Index("ix_media_recording_owner_id_created_at_id", "owner_id", "created_at", "id"),
    )

    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"))
    broadcast_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("broadcast.id", ondelete="SET NULL"))
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(140))
    storage_prefix: Mapped[str] = mapped_column(String(200))
    duration_seconds: Mapped[int] = mapped_column(default=0)
    has_thumbnail: Mapped[bool] = mapped_column(default=False)
    audio_only: Mapped[bool] = mapped_column(default=False)
    deleted_at: Mapped[datetime | None]
    # The stored objects, relative to ``storage_prefix`` (what deletion removes), and their size.
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class StreamGuest(Timestamped, Base):
    """A user the stream's owner invited to co-host (interactive guests get RTC tokens)."""

    __tablename__ = "media_stream_guest"

    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
