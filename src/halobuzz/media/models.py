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


class RadioChannel(UUIDPrimaryKey, Timestamped, Base):
    """A 24/7 audio channel: scheduled shows carry their host, the auto-DJ plays its tracks otherwise."""

    __tablename__ = "radio_channel"
    __table_args__ = (Index("ix_radio_channel_owner_id", "owner_id"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(1000), default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    category: Mapped[str] = mapped_column(String(40), default="radio")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # IANA name; show slots are local to it
    deleted_at: Mapped[datetime | None]


class RadioTrack(UUIDPrimaryKey, Timestamped, Base):
    """An uploaded audio file, transcoded once to the AAC ladder as HLS segments under ``storage_prefix``."""

    __tablename__ = "radio_track"
    __table_args__ = (Index("ix_radio_track_channel_id_position", "channel_id", "position"),)

    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("radio_channel.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(140))
    position: Mapped[int] = mapped_column(default=0)  # playlist order
    duration_ms: Mapped[int] = mapped_column(default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # the uploaded file
    storage_prefix: Mapped[str] = mapped_column(String(200))
    # Segment durations (seconds) shared by every rendition, and the rendition names.
    segments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    renditions: Mapped[list[Any]] = mapped_column(JSON, default=list)


class RadioShow(UUIDPrimaryKey, Timestamped, Base):
    """A slot of a channel's schedule: weekly (weekday + local start minute) or dated (a UTC start);
    while it runs and its host's linked stream is live, the channel carries the host."""

    __tablename__ = "radio_show"
    __table_args__ = (Index("ix_radio_show_channel_id", "channel_id"),)

    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("radio_channel.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(140))
    host_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"))
    weekday: Mapped[int | None]  # 0 = Monday (weekly slots)
    start_minute: Mapped[int | None]  # minutes after local midnight (weekly slots)
    starts_at: Mapped[datetime | None]  # dated slots
    duration_minutes: Mapped[int]
