"""Go-live fan-out: every follower once per broadcast, in chunked events, idempotent on redelivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update

from halobuzz.app import HaloBuzzApp
from halobuzz.core.clock import utcnow
from halobuzz.core.events import OutboxEvent, ProcessedEvent
from halobuzz.notifications.models import FanoutChunk, Notification
from tests.conftest import client_for
from tests.events.conftest import jobs_settings, wait_for
from tests.notifications.conftest import API, notification_settings


async def _count(app: HaloBuzzApp, model: Any, *where: Any) -> int:
    async with app.runtime.db.session(write=False) as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.mark.no_relay
async def test_go_live_reaches_every_follower_once_in_chunks(
    app: HaloBuzzApp, app_factory: Callable[..., Any], make_user: Any
) -> None:
    worker = await app_factory(jobs=jobs_settings(), notifications=notification_settings(fanout_chunk_size=5))
    creator = await make_user(roles=["creator"])
    followers = [await make_user() for _ in range(12)]
    muted = followers[0]
    async with client_for(worker) as client:
        for f in followers:
            assert (await client.post(f"{API}/users/{creator.id}/follow", headers=f.headers)).status_code == 200
        r = await client.patch(
            f"{API}/notifications/preferences",
            json={"types": {"stream_live": {"in_app": False}}},
            headers=muted.headers,
        )
        assert r.status_code == 200 and r.json()["types"]["stream_live"]["in_app"] is False
        stream = (await client.post(f"{API}/streams", json={"title": "Evening show"}, headers=creator.headers)).json()
        assert (await client.post(f"{API}/streams/{stream['id']}/start", headers=creator.headers)).status_code == 200

        async def all_written() -> bool:
            return await _count(worker, Notification, Notification.type == "stream_live") == 11

        await wait_for(all_written)
        async with worker.runtime.db.session(write=False) as s:
            live_event = await s.scalar(select(OutboxEvent).where(OutboxEvent.type == "stream.live"))
            assert live_event is not None
            chunks = list(await s.scalars(select(FanoutChunk).order_by(FanoutChunk.chunk)))
            chunk_events = await s.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "notifications.fanout")
            )
        # 12 followers in chunks of 5: the first chunk in the stream.live consumer, two more as events.
        assert [(c.source_event_id, c.chunk) for c in chunks] == [
            (live_event.id, 0),
            (live_event.id, 1),
            (live_event.id, 2),
        ]
        assert sum(c.recipients for c in chunks) == 11
        assert chunk_events == 2

        r = await client.get(f"{API}/notifications", headers=followers[1].headers)
        [item] = r.json()["items"]
        assert item["type"] == "stream_live"
        assert item["data"] == {
            "stream_id": stream["id"],
            "broadcast_id": str(live_event.data["broadcast_id"]),
            "title": "Evening show",
            "creator": {"id": str(creator.id), "username": creator.username},
        }
        assert (await client.get(f"{API}/notifications", headers=muted.headers)).json()["items"] == []

        # The whole fan-out delivered again (a crash before the processed marks): nothing doubles.
        async with worker.runtime.db.session() as s:
            await s.execute(delete(ProcessedEvent))
            await s.execute(
                update(OutboxEvent)
                .where(OutboxEvent.type.in_(["stream.live", "notifications.fanout"]))
                .values(dispatched_at=None, next_attempt_at=utcnow(), attempts=0)
            )

        async def redelivered() -> bool:
            return await _count(worker, OutboxEvent, OutboxEvent.dispatched_at.is_(None)) == 0

        await wait_for(redelivered)
        assert await _count(worker, Notification, Notification.type == "stream_live") == 11
        assert await _count(worker, FanoutChunk) == 3
        assert await _count(worker, OutboxEvent, OutboxEvent.type == "notifications.fanout") == 2

        # A new broadcast is a new notification for each follower.
        assert (await client.post(f"{API}/streams/{stream['id']}/end", headers=creator.headers)).status_code == 200
        assert (await client.post(f"{API}/streams/{stream['id']}/start", headers=creator.headers)).status_code == 200

        async def second_round() -> bool:
            return await _count(worker, Notification, Notification.type == "stream_live") == 22

        await wait_for(second_round)
        per_follower = await _count(worker, Notification, Notification.recipient_id == followers[5].id)
        assert per_follower == 2


async def test_going_live_without_followers_writes_nothing_and_emits_no_chunk(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any
) -> None:
    creator = await make_user(roles=["creator"])
    stream = (await client.post(f"{API}/streams", json={"title": "Alone"}, headers=creator.headers)).json()
    assert (await client.post(f"{API}/streams/{stream['id']}/start", headers=creator.headers)).status_code == 200

    async def marked() -> bool:
        return await _count(app, FanoutChunk) == 1

    await wait_for(marked)
    async with app.runtime.db.session(write=False) as s:
        chunk = await s.scalar(select(FanoutChunk))
    assert chunk is not None and chunk.recipients == 0
    assert await _count(app, Notification) == 0
    assert await _count(app, OutboxEvent, OutboxEvent.type == "notifications.fanout") == 0
