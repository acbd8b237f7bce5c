"""Helpers for the streams tests: creators, streams made through the API, direct row edits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from halobuzz.app import HaloBuzzApp
from halobuzz.realtime.asgi import gateway_of
from halobuzz.streams.models import Broadcast, Stream


@pytest.fixture
async def creator(make_user: Callable[..., Any]) -> Any:
    return await make_user(roles=["creator"])


@pytest.fixture
async def admin(make_user: Callable[..., Any]) -> Any:
    return await make_user(roles=["admin"])


@pytest.fixture
async def fan(make_user: Callable[..., Any]) -> Any:
    return await make_user()


@pytest.fixture
def new_stream(client: httpx.AsyncClient) -> Callable[..., Any]:
    """Create a stream through the API as ``owner``; returns the 201 body (with its key)."""

    async def create(owner: Any, **fields: Any) -> dict[str, Any]:
        body = {"title": f"stream {uuid.uuid4().hex[:6]}", **fields}
        r = await client.post("/api/v1/streams", json=body, headers=owner.headers)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    return create


async def settle_presence(app: HaloBuzzApp) -> None:
    """Let the real-time gateway finish its announcements and recounts."""
    gateway = gateway_of(app.runtime)
    if gateway is not None:
        await gateway.drain()


async def set_viewers(app: HaloBuzzApp, stream_id: str, viewer_count: int) -> None:
    """Set a stream's viewer count straight in the database (as the presence layer would).

    The gateway recounts a stream's room when it goes live: let that finish first, or it could
    overwrite this count with the (empty) room's."""
    await settle_presence(app)
    async with app.runtime.db.session() as session:
        await session.execute(update(Stream).where(Stream.id == uuid.UUID(stream_id)).values(viewer_count=viewer_count))


async def stream_row(app: HaloBuzzApp, stream_id: str) -> Stream:
    async with app.runtime.db.session(write=False) as session:
        row = await session.get(Stream, uuid.UUID(stream_id))
        assert row is not None
        return row


async def broadcast_count(app: HaloBuzzApp, stream_id: str) -> int:
    async with app.runtime.db.session(write=False) as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Broadcast).where(Broadcast.stream_id == uuid.UUID(stream_id))
            )
            or 0
        )


async def stream_count(app: HaloBuzzApp) -> int:
    async with app.runtime.db.session(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(Stream)) or 0)
