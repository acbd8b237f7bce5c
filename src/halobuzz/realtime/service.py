"""The few database operations of the gateway itself: stream look-ups and likes."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.core.errors import Conflict, NotFound
from halobuzz.streams.models import Stream, StreamStatus


async def require_stream(*, session: AsyncSession, stream_id: uuid.UUID) -> None:
    """``NotFound`` unless the stream exists (and was not deleted)."""
    found = await session.scalar(select(Stream.id).where(Stream.id == stream_id, Stream.deleted_at.is_(None)))
    if found is None:
        raise NotFound("stream not found", code="stream_not_found")


async def like_stream(*, session: AsyncSession, stream_id: uuid.UUID) -> int:
    """Count one like for the stream's current broadcast (atomic increment); its new like count.

    ``Conflict`` when the stream is not live: likes belong to a broadcast.
    """
    count = await session.scalar(
        update(Stream)
        .where(Stream.id == stream_id, Stream.status == StreamStatus.LIVE.value, Stream.deleted_at.is_(None))
        .values(like_count=Stream.like_count + 1)
        .returning(Stream.like_count)
        .execution_options(synchronize_session=False)
    )
    if count is None:
        await require_stream(session=session, stream_id=stream_id)
        raise Conflict("the stream is not live; likes count while it is on air", code="stream_not_live")
    return int(count)


async def get_like_count(*, session: AsyncSession, stream_id: uuid.UUID) -> int:
    """The stream's like count (0 when it does not exist)."""
    return int(await session.scalar(select(Stream.like_count).where(Stream.id == stream_id)) or 0)
