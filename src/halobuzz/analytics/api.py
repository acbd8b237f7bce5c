"""Routes: GET /streams/{id}/stats — per-broadcast numbers for the stream's owner."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from halobuzz.accounts.deps import CurrentUser
from halobuzz.analytics import service
from halobuzz.core.deps import PageDep, SessionDep
from halobuzz.core.pagination import Page

router = APIRouter(prefix="/streams", tags=["analytics"])


class BroadcastStatsOut(BaseModel):
    broadcast_id: uuid.UUID
    title: str
    started_at: datetime
    ended_at: datetime | None = Field(description="null while the broadcast is live")
    duration_seconds: int | None
    peak_viewers: int
    chat_messages: int = Field(description="messages delivered to the room (deleted ones included, held ones not)")
    chatters: int = Field(description="distinct users who chatted")
    gifts: int = Field(description="gift units sent")
    gift_coins: int = Field(description="coins the gifts cost their senders")
    gifters: int = Field(description="distinct users who sent gifts")


@router.get(
    "/{stream_id}/stats",
    response_model=Page[BroadcastStatsOut],
    summary="Per-broadcast numbers: peak viewers, chat, gifts (owner or admin)",
)
async def stream_stats(
    stream_id: Annotated[uuid.UUID, Path(description="stream id")],
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
) -> Page[BroadcastStatsOut]:
    found = await service.broadcast_stats(
        session=session, actor=user, stream_id=stream_id, limit=page.limit, cursor=page.cursor
    )
    return Page(
        items=[BroadcastStatsOut.model_validate(s, from_attributes=True) for s in found.items],
        next_cursor=found.next_cursor,
    )
