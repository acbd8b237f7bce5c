"""Announcements other domains make to the rooms (call them after commit)."""

from __future__ import annotations

import uuid
from datetime import datetime

from halobuzz.core.runtime import Runtime
from halobuzz.realtime.asgi import gateway_of


def stream_started(
    runtime: Runtime, *, stream_id: uuid.UUID, broadcast_id: uuid.UUID, title: str, started_at: datetime
) -> None:
    """``stream_started`` to the stream's room and its owner's connected followers; the viewers already
    waiting are counted afresh."""
    gateway = gateway_of(runtime)
    if gateway is not None:
        gateway.stream_started(
            stream_id=stream_id,
            payload={"stream_id": stream_id, "broadcast_id": broadcast_id, "title": title, "started_at": started_at},
        )


def stream_ended(runtime: Runtime, *, stream_id: uuid.UUID, broadcast_id: uuid.UUID | None, ended_at: datetime) -> None:
    """``stream_ended`` to the stream's room."""
    gateway = gateway_of(runtime)
    if gateway is not None:
        gateway.stream_ended(
            stream_id=stream_id, payload={"stream_id": stream_id, "broadcast_id": broadcast_id, "ended_at": ended_at}
        )
