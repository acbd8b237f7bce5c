"""The minute job of engagement analysis: sample every live stream (viewers, chat messages and chat
mood in the last minute), analyse the broadcast's recent samples, and send the owner a hint —
Socket.IO ``engagement_hint`` to their ``user:{id}`` room — when the audience is falling, the chat
went quiet or its mood turned negative (at most one hint per MODERATION_ENGAGEMENT_COOLDOWN_MINUTES).

Scheduled as ``halobuzz.ai.monitor:analyze_live_streams`` every minute (jobs/schedule.py); a slot
runs once across schedulers, and a repeated run of one slot changes nothing (samples are unique
per stream and minute).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from halobuzz.ai import engagement
from halobuzz.ai import sentiment as sentiment_mod
from halobuzz.ai.models import EngagementHint, EngagementSample
from halobuzz.ai.service import ai_of
from halobuzz.chat.models import ChatMessage
from halobuzz.core.db import after_commit
from halobuzz.core.kv import RedisStore
from halobuzz.core.runtime import Runtime
from halobuzz.streams.models import Stream, StreamStatus

log = structlog.get_logger(__name__)
EVENT = "engagement_hint"
MOOD_SAMPLE = 200  # messages per stream and minute whose sentiment is averaged


def push_to_user(runtime: Runtime, user_id: uuid.UUID, event: str, payload: dict[str, Any]) -> None:
    """Emit to a user's sockets on every instance: through this process's gateway, or — in a
    scheduler or worker process without one — straight onto the gateways' Redis channel."""
    from halobuzz.realtime.asgi import gateway_of
    from halobuzz.realtime.codec import dumps
    from halobuzz.realtime.gateway import user_room

    gateway = gateway_of(runtime)
    if gateway is not None:
        gateway.emit_to_user(user_id, event, payload)
        return
    kv = runtime.kv
    if isinstance(kv, RedisStore):
        import asyncio

        channel = f"{kv.prefix}rt:ch:{user_room(user_id)}"

        async def publish() -> None:
            await kv.client.publish(channel, f"{event}\n\n\n{dumps(payload)}")

        task = asyncio.get_running_loop().create_task(publish())
        _pending.add(task)
        task.add_done_callback(_pending.discard)
        return
    log.info("engagement_hint_not_delivered", user_id=str(user_id), reason="no gateway and no Redis in this process")


_pending: set[Any] = set()


async def _mood(runtime: Runtime, texts: list[str]) -> float | None:
    if not texts:
        return None
    ai = ai_of(runtime)
    scores = []
    for text in texts[:MOOD_SAMPLE] if not ai.remote else texts[:20]:
        result = await ai.sentiment(text) if ai.remote else sentiment_mod.analyze(text)
        if result.language != "und":
            scores.append(result.score)
    return sum(scores) / len(scores) if scores else None


async def analyze_stream(runtime: Runtime, *, stream_id: uuid.UUID, at: datetime) -> engagement.Report | None:
    """Sample one live stream at ``at`` and analyse its broadcast; a hint is sent when due."""
    settings = runtime.settings.moderation
    async with runtime.db.session(write=False) as read:
        stream = await read.get(Stream, stream_id)
        if stream is None or stream.status != StreamStatus.LIVE or stream.deleted_at is not None:
            return None
        since = at - timedelta(minutes=1)
        texts = list(
            await read.scalars(
                select(ChatMessage.text)
                .where(ChatMessage.stream_id == stream_id, ChatMessage.created_at > since, ChatMessage.created_at <= at)
                .order_by(ChatMessage.created_at.desc())
                .limit(5000)
            )
        )
        owner_id, broadcast_id, viewers = stream.owner_id, stream.current_broadcast_id, stream.viewer_count
    mood = await _mood(runtime, texts)
    async with runtime.db.session() as session:
        try:
            async with session.begin_nested():
                session.add(
                    EngagementSample(
                        stream_id=stream_id,
                        broadcast_id=broadcast_id,
                        at=at,
                        viewers=viewers,
                        messages=len(texts),
                        mood=mood,
                    )
                )
        except IntegrityError:  # this minute was sampled already (a repeated slot)
            return None
        window = at - timedelta(minutes=settings.engagement_window_minutes)
        rows = list(
            await session.scalars(
                select(EngagementSample)
                .where(
                    EngagementSample.stream_id == stream_id,
                    EngagementSample.broadcast_id == broadcast_id,
                    EngagementSample.at > window,
                    EngagementSample.at <= at,
                )
                .order_by(EngagementSample.at)
            )
        )
        samples = [engagement.Sample(r.at, r.viewers, r.messages, r.mood) for r in rows]
        report = await ai_of(runtime).engagement(samples)
        if report.hint is None:
            return report
        cooldown = at - timedelta(minutes=settings.engagement_cooldown_minutes)
        recent = await session.scalar(
            select(func.count()).where(EngagementHint.stream_id == stream_id, EngagementHint.created_at > cooldown)
        )
        if recent:
            return report
        session.add(
            EngagementHint(
                stream_id=stream_id, broadcast_id=broadcast_id, status=report.status, hint=report.hint, created_at=at
            )
        )
        payload = {"stream_id": stream_id, "broadcast_id": broadcast_id, "at": at, **report.as_dict()}
        after_commit(session, lambda: push_to_user(runtime, owner_id, EVENT, payload))
    return report


async def analyze_live_streams(runtime: Runtime, *, scheduled_for: datetime) -> dict[str, Any]:
    """The scheduled job: every live stream, sampled at ``scheduled_for``."""
    if not runtime.settings.moderation.engagement_enabled:
        return {"streams": 0, "hints": 0, "disabled": True}
    async with runtime.db.session(write=False) as read:
        ids = list(
            await read.scalars(
                select(Stream.id).where(Stream.status == StreamStatus.LIVE.value, Stream.deleted_at.is_(None))
            )
        )
    hints = 0
    for stream_id in ids:
        try:
            report = await analyze_stream(runtime, stream_id=stream_id, at=scheduled_for)
        except Exception:  # one stream's failure must not skip the others
            log.exception("engagement_analysis_failed", stream_id=str(stream_id))
            continue
        hints += bool(report is not None and report.hint)
    return {"streams": len(ids), "hints": hints}
