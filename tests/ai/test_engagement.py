"""Engagement analysis: the analyzer, and the minute job sending the creator a hint over Socket.IO."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from halobuzz.ai import engagement
from halobuzz.ai.models import EngagementHint, EngagementSample
from halobuzz.ai.monitor import analyze_live_streams
from halobuzz.core.clock import utcnow
from halobuzz.streams.models import Stream
from tests.realtime.support import create_stream, live, sockets

__all__ = ["live", "sockets"]


def series(viewers: list[int], messages: list[int], moods: list[float | None] | None = None):
    start = utcnow().replace(second=0, microsecond=0)
    moods = moods or [None] * len(viewers)
    return [
        engagement.Sample(start + timedelta(minutes=i), v, m, mood)
        for i, (v, m, mood) in enumerate(zip(viewers, messages, moods, strict=True))
    ]


def test_the_analyzer_tells_falling_audience_quiet_chat_and_bad_mood() -> None:
    assert engagement.analyze(series([10, 10], [5, 5])).status == "insufficient_data"
    steady = engagement.analyze(series([20, 21, 20, 22, 21], [8, 9, 7, 8, 9]))
    assert steady.status == "ok" and steady.hint is None
    falling = engagement.analyze(series([40, 42, 41, 25, 22], [10, 10, 11, 10, 9]))
    assert falling.signals == ["audience_falling"] and falling.viewer_change is not None
    assert falling.viewer_change < -0.4 and "Viewers are leaving" in (falling.hint or "")
    quiet = engagement.analyze(series([30, 30, 30, 30, 30], [12, 14, 13, 2, 1]))
    assert quiet.signals == ["chat_quiet"]
    sour = engagement.analyze(series([30] * 5, [6] * 5, [0.3, 0.2, 0.1, -0.6, -0.5]))
    assert sour.signals == ["mood_negative"]
    # A handful of viewers coming and going is noise, not a trend.
    assert engagement.analyze(series([2, 2, 2, 1, 1], [0, 1, 0, 0, 0])).status == "ok"


async def test_the_minute_job_hints_the_owner_once_per_cooldown(app, live, sockets, make_user):
    server = await live()
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner, go_live=True)
    owner_socket = sockets()
    await owner_socket.connect(server, owner.access_token)
    runtime = server.app.runtime
    now = utcnow().replace(second=0, microsecond=0)
    async with runtime.db.session() as session:
        stream = await session.get(Stream, uuid.UUID(stream_id))
        assert stream is not None
        for i, viewers in enumerate((50, 52, 51, 49), start=1):
            at = now - timedelta(minutes=6 - i)
            session.add(
                EngagementSample(
                    stream_id=stream.id, broadcast_id=stream.current_broadcast_id, at=at, viewers=viewers, messages=12
                )
            )
        session.add(
            EngagementSample(
                stream_id=stream.id,
                broadcast_id=stream.current_broadcast_id,
                at=now - timedelta(minutes=1),
                viewers=20,
                messages=1,
            )
        )
        await session.execute(update(Stream).where(Stream.id == stream.id).values(viewer_count=18))

    result = await analyze_live_streams(runtime, scheduled_for=now)
    assert result == {"streams": 1, "hints": 1}
    hint = await owner_socket.wait_for("engagement_hint")
    assert hint["stream_id"] == stream_id and hint["status"] == "audience_falling"
    assert set(hint["signals"]) == {"audience_falling", "chat_quiet"} and hint["viewer_change"] < -0.5
    assert "Viewers are leaving" in hint["hint"] and "Chat has gone quiet" in hint["hint"]

    # The same slot again changes nothing; the next minute is within the cooldown: no second hint.
    assert (await analyze_live_streams(runtime, scheduled_for=now))["hints"] == 0
    await analyze_live_streams(runtime, scheduled_for=now + timedelta(minutes=1))
    async with runtime.db.session(write=False) as session:
        hints = list(await session.scalars(select(EngagementHint)))
        samples = list(await session.scalars(select(EngagementSample).where(EngagementSample.at >= now)))
    assert len(hints) == 1 and len(samples) == 2
    assert owner_socket.of("engagement_hint") == [hint]
