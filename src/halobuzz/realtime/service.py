"""The few database operations of the gateway itself: stream look-ups, likes, sign-in checks of
open sockets and the followers a go-live reaches."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.auth import is_signed_in_allowed
from halobuzz.accounts.models import AuthSession, Follow, User
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import Conflict, NotFound, Unauthorized
from halobuzz.streams.models import Stream, StreamStatus

# A position in a followee's followers: (followed at, follower id).
FollowerKey = tuple[datetime, uuid.UUID]


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


async def ended_sessions(
    *, session: AsyncSession, user_id: uuid.UUID, session_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Unauthorized]:
    """Which of the user's sign-in sessions may no longer be used, each with why (the error a new
    connection with that session would get); valid ones are left out."""
    if not session_ids:
        return {}
    user = await session.get(User, user_id)
    if user is None:
        gone = Unauthorized("access token is invalid or expired; refresh it or sign in again", code="invalid_token")
        return dict.fromkeys(session_ids, gone)
    now = utcnow()
    if not is_signed_in_allowed(user, now):
        blocked = Unauthorized(f"account is {user.status}", code=f"account_{user.status}")
        return dict.fromkeys(session_ids, blocked)
    rows = (
        await session.execute(
            select(AuthSession.id, AuthSession.revoked_at, AuthSession.expires_at).where(
                AuthSession.user_id == user_id, AuthSession.id.in_(list(session_ids))
            )
        )
    ).all()
    open_ids = {row.id for row in rows if row.revoked_at is None and row.expires_at > now}
    ended = Unauthorized("this sign-in has ended; sign in again", code="session_revoked")
    return {sid: ended for sid in session_ids if sid not in open_ids}


async def stream_owner(*, session: AsyncSession, stream_id: uuid.UUID) -> uuid.UUID | None:
    """The owner of a stream (None when it does not exist)."""
    return await session.scalar(select(Stream.owner_id).where(Stream.id == stream_id))


async def follower_page(
    *, session: AsyncSession, user_id: uuid.UUID, after: FollowerKey | None, limit: int
) -> list[FollowerKey]:
    """Up to ``limit`` followers of ``user_id`` after ``after``, in (followed at, id) order.

    Keyset pagination over the ``(followee_id, created_at)`` index: each page costs the same,
    however many followers come before it.
    """
    query = select(Follow.created_at, Follow.follower_id).where(Follow.followee_id == user_id)
    if after is not None:
        at, follower_id = after
        query = query.where(
            or_(Follow.created_at > at, and_(Follow.created_at == at, Follow.follower_id > follower_id))
        )
    rows = await session.execute(query.order_by(Follow.created_at, Follow.follower_id).limit(limit))
    return [(row.created_at, row.follower_id) for row in rows]
