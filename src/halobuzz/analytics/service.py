"""Per-broadcast numbers of a stream: peak viewers, chat messages and gifts.

Read-only and derived from the rows other domains write (``broadcast``, ``chat_message``,
``gift_sent``), so there is nothing to keep in step: each page of broadcasts costs three queries.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.chat.models import ChatMessage, MessageStatus
from halobuzz.economy.models import GiftSent
from halobuzz.streams import service as streams_service


@dataclass(frozen=True, slots=True)
class BroadcastStats:
    broadcast_id: uuid.UUID
    title: str
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int | None
    peak_viewers: int
    chat_messages: int
    chatters: int
    gifts: int
    gift_coins: int
    gifters: int


@dataclass(frozen=True, slots=True)
class StatsPage:
    items: list[BroadcastStats]
    next_cursor: str | None


async def broadcast_stats(
    *, session: AsyncSession, actor: User, stream_id: uuid.UUID, limit: int, cursor: str | None
) -> StatsPage:
    """The numbers of a stream's broadcasts, newest first (owner or admin). Chat counts messages
    delivered to the room (held ones never were; deleted ones were); gifts count units sent."""
    await streams_service.access_stream_for_owner(session=session, stream_id=stream_id, actor=actor)
    page = await streams_service.list_broadcasts(session=session, stream_id=stream_id, limit=limit, cursor=cursor)
    ids = [b.id for b in page.items]
    chat: dict[uuid.UUID, tuple[int, int]] = {}
    gifts: dict[uuid.UUID, tuple[int, int, int]] = {}
    if ids:
        chat_rows = await session.execute(
            select(ChatMessage.broadcast_id, func.count(), func.count(distinct(ChatMessage.user_id)))
            .where(
                ChatMessage.stream_id == stream_id,
                ChatMessage.broadcast_id.in_(ids),
                ChatMessage.status != MessageStatus.HELD.value,
            )
            .group_by(ChatMessage.broadcast_id)
        )
        chat = {bid: (int(n), int(people)) for bid, n, people in chat_rows if bid is not None}
        gift_rows = await session.execute(
            select(
                GiftSent.broadcast_id,
                func.coalesce(func.sum(GiftSent.quantity), 0),
                func.coalesce(func.sum(GiftSent.coins), 0),
                func.count(distinct(GiftSent.sender_id)),
            )
            .where(GiftSent.broadcast_id.in_(ids))
            .group_by(GiftSent.broadcast_id)
        )
        gifts = {bid: (int(n), int(coins), int(people)) for bid, n, coins, people in gift_rows if bid is not None}
    items = [
        BroadcastStats(
            broadcast_id=b.id,
            title=b.title,
            started_at=b.started_at,
            ended_at=b.ended_at,
            duration_seconds=b.duration_seconds,
            peak_viewers=b.peak_viewers,
            chat_messages=chat.get(b.id, (0, 0))[0],
            chatters=chat.get(b.id, (0, 0))[1],
            gifts=gifts.get(b.id, (0, 0, 0))[0],
            gift_coins=gifts.get(b.id, (0, 0, 0))[1],
            gifters=gifts.get(b.id, (0, 0, 0))[2],
        )
        for b in page.items
    ]
    return StatsPage(items, page.next_cursor)
