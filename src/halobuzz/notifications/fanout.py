"""Go-live fan-out: a ``stream.live`` reaches every follower of the creator, in chunks.

The ``stream.live`` consumer writes the first chunk (at most ``NOTIFICATIONS_FANOUT_CHUNK_SIZE``,
5,000, followers) and, when more followers remain, emits the internal outbox event
``notifications.fanout`` carrying the follower cursor where the next chunk starts; its consumer
writes that chunk and emits the next, and so on. Each chunk is its own event and transaction, so
events committed meanwhile (another creator going live, a gift) are delivered between two chunks
of a huge following instead of after all of them, and any worker can take the next chunk.

A chunk is marked in ``notification_fanout_chunk`` (source event, chunk number) in the same
transaction as its rows and its successor event: a redelivered chunk finds the mark and does
nothing, so each chunk (and the chain) happens once. Rows are also unique per recipient and
broadcast (``stream.live:<broadcast id>``), so a follower gets one notification per broadcast.
Rows are written with one statement per chunk (PostgreSQL: arrays unnested into
``INSERT … ON CONFLICT DO NOTHING RETURNING``; SQLite: executemany), then the followers' user
rooms get their socket pushes in pipelined batches after commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.core import events
from halobuzz.core.clock import utcnow
from halobuzz.core.db import after_commit
from halobuzz.notifications import catalog, service
from halobuzz.notifications.models import FanoutChunk
from halobuzz.realtime import service as realtime_service

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)

FANOUT_EVENT = "notifications.fanout"


def stream_live_draft(data: dict[str, Any]) -> service.Draft:
    """The notification of a go-live (the same for every follower)."""
    owner = data["owner"]
    return service.Draft(
        type=catalog.STREAM_LIVE,
        data={
            "stream_id": data["stream_id"],
            "broadcast_id": data["broadcast_id"],
            "title": data["title"],
            "creator": {"id": owner["id"], "username": owner["username"]},
        },
        dedupe_key=f"stream.live:{data['broadcast_id'] or data['stream_id']}",
        actor_id=uuid.UUID(owner["id"]),
        subject_type="stream",
        subject_id=str(data["stream_id"]),
    )


async def _claim_chunk(session: AsyncSession, source_id: uuid.UUID, chunk: int) -> bool:
    """Mark the chunk as written in this transaction; False when an earlier delivery already did."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(FanoutChunk)
        .values(source_event_id=source_id, chunk=chunk, recipients=0, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["source_event_id", "chunk"])
        .returning(FanoutChunk.chunk)
    )
    return result.first() is not None


async def _followers(
    session: AsyncSession, owner_id: uuid.UUID, after: realtime_service.FollowerKey | None, limit: int
) -> list[realtime_service.FollowerKey]:
    """The next chunk of followers in (followed at, id) order. On PostgreSQL a plain statement whose
    rows come back as the driver made them (no per-row type processing for 5,000 rows); elsewhere
    the gateway's keyset query (realtime.service.follower_page)."""
    if session.get_bind().dialect.name != "postgresql":
        return await realtime_service.follower_page(session=session, user_id=owner_id, after=after, limit=limit)
    where = "followee_id = :owner"
    params: dict[str, Any] = {"owner": owner_id, "limit": limit}
    if after is not None:
        where += " AND (created_at, follower_id) > (:at, :id)"
        params.update(at=after[0], id=after[1])
    rows = await session.execute(
        text(f"SELECT created_at, follower_id FROM follow WHERE {where} ORDER BY created_at, follower_id LIMIT :limit"),  # noqa: S608 - fixed SQL, values bound
        params,
    )
    return [(row[0], row[1]) for row in rows]


async def process_chunk(runtime: Runtime, *, data: dict[str, Any], source_id: uuid.UUID, chunk: int) -> int:
    """Write one chunk of a go-live fan-out and queue the next; the number of notifications written."""
    from halobuzz.notifications.consumers import after_created

    settings = runtime.settings.notifications
    size = settings.fanout_chunk_size
    raw_after = data.get("after")
    after = (datetime.fromisoformat(raw_after[0]), uuid.UUID(raw_after[1])) if raw_after else None
    draft = stream_live_draft(data)
    async with runtime.db.session() as s:
        if not await _claim_chunk(s, source_id, chunk):
            log.info("fanout_chunk_repeated", source_event_id=str(source_id), chunk=chunk)
            return 0
        page = await _followers(s, uuid.UUID(data["owner"]["id"]), after, size)
        outcome = await service.notify(
            session=s,
            draft=draft,
            recipients=[uid for _, uid in page],
            available=runtime_channels(runtime),
            require_verified_email=settings.email_require_verified,
        )
        await s.execute(
            update(FanoutChunk)
            .where(FanoutChunk.source_event_id == source_id, FanoutChunk.chunk == chunk)
            .values(recipients=len(outcome.created))
            .execution_options(synchronize_session=False)
        )
        if len(page) == size:
            last_at, last_id = page[-1]
            events.emit(
                s,
                FANOUT_EVENT,
                {**data, "source_event_id": source_id, "chunk": chunk + 1, "after": [last_at, last_id]},
            )
        after_commit(s, lambda: after_created(runtime, outcome, draft))
    log.info(
        "fanout_chunk",
        source_event_id=str(source_id),
        chunk=chunk,
        followers=len(page),
        written=len(outcome.created),
        deliveries=outcome.deliveries,
        more=len(page) == size,
    )
    return len(outcome.created)


def runtime_channels(runtime: Runtime) -> frozenset[str]:
    from halobuzz.notifications.dispatch import channels_of

    return channels_of(runtime).available()
