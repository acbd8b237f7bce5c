"""Raids: a creator ending a live stream sends its viewers to another live stream."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.core import events
from halobuzz.core.cache import ResponseCache
from halobuzz.core.db import after_commit
from halobuzz.core.errors import Conflict, InvalidInput, NotFound
from halobuzz.streams import service
from halobuzz.streams.models import Stream, StreamStatus


@dataclass(frozen=True)
class Raid:
    stream_id: uuid.UUID
    target_stream_id: uuid.UUID
    target: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "target_stream_id": self.target_stream_id, "target": self.target}


async def raid_stream(
    *,
    session: AsyncSession,
    actor: User,
    stream_id: uuid.UUID,
    target_stream_id: uuid.UUID,
    cache: ResponseCache | None = None,
    client: service.ClientInfo | None = None,
    on_air: service.OnAir | None = None,
    on_raid: Callable[[Raid], None] | None = None,
) -> Raid:
    """Send a live stream's viewers to another live stream and end it (owner or admin).

    Emits ``raid.incoming``; ``on_raid`` (the room's ``raid`` event) runs after commit, before the
    stream's ``stream_ended``.
    """
    if target_stream_id == stream_id:
        raise InvalidInput("a stream cannot raid itself", code="raid_self")
    source = await service.access_stream_for_owner(session=session, stream_id=stream_id, actor=actor, lock=True)
    if source.status != StreamStatus.LIVE:
        raise Conflict("only a live stream can raid", code="not_live")
    target = await session.get(Stream, target_stream_id)
    if target is None or target.deleted_at is not None:
        raise NotFound("no such target stream", code="stream_not_found")
    if target.status != StreamStatus.LIVE:
        raise Conflict("the target stream is not live", code="target_not_live")
    owner = await session.get(User, target.owner_id)
    assert owner is not None
    raid = Raid(
        stream_id=source.id,
        target_stream_id=target.id,
        target={"id": target.id, "title": target.title, "owner": {"id": owner.id, "username": owner.username}},
    )
    events.emit(
        session,
        "raid.incoming",
        {
            "stream_id": source.id,
            "source_owner_id": source.owner_id,
            "target_stream_id": target.id,
            "target_owner_id": target.owner_id,
            "viewer_count": source.viewer_count,
        },
        actor_id=actor.id,
    )
    if on_raid is not None:
        callback = on_raid
        after_commit(session, lambda: callback(raid))
    await service.end_stream(
        session=session, actor=actor, stream_id=stream_id, cache=cache, client=client, on_air=on_air
    )
    return raid
