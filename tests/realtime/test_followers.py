"""Going live reaches the owner's connected followers through their ``user:{id}`` rooms."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from halobuzz.accounts.models import Follow
from halobuzz.core.clock import utcnow
from halobuzz.realtime import gateway as gateway_module
from halobuzz.realtime import service
from tests.conftest import TEST_REDIS_URL
from tests.realtime.support import Live, SocketClient, create_stream, joined

if TYPE_CHECKING:
    from tests.conftest import TestUser


async def _follow(live: Live, follower: TestUser, followee: TestUser) -> None:
    response = await live.http.post(
        f"/api/v1/users/{followee.id}/follow",
        headers=follower.headers,
    )
    assert response.status_code in (200, 201), response.text


async def test_followers_hear_of_a_go_live_and_others_do_not(live, sockets, make_user, monkeypatch):
    # Small batches, so several keyset pages are read.
    monkeypatch.setattr(gateway_module, "FOLLOWER_BATCH", 2)
    server = await live()
    owner, stranger, watcher = await make_user(roles=["creator"]), await make_user(), await make_user()
    fans = [await make_user() for _ in range(5)]
    for fan in [*fans, watcher]:
        await _follow(server, fan, owner)
    stream_id = await create_stream(server, owner, title="Morning show")

    fan_sockets = [sockets() for _ in fans]
    for client, fan in zip(fan_sockets, fans, strict=True):
        await client.connect(server, fan.access_token)
    second_tab = sockets()
    await second_tab.connect(server, fans[0].access_token)
    outsider, watching, anonymous = sockets(), sockets(), sockets()
    await outsider.connect(server, stranger.access_token)
    await watching.connect(server, watcher.access_token)
    await anonymous.connect(server)
    await joined(watching, stream_id)  # a follower already in the room
    await joined(anonymous, stream_id)

    response = await server.http.post(f"/api/v1/streams/{stream_id}/start", headers=owner.headers)
    assert response.status_code == 200, response.text
    broadcast_id = response.json()["current_broadcast"]["id"]

    for client in [*fan_sockets, second_tab, watching, anonymous]:
        started = await client.wait_for("stream_started")
        assert started["stream_id"] == stream_id and started["title"] == "Morning show"
        assert set(started) == {"stream_id", "broadcast_id", "title", "started_at"}
        assert started["broadcast_id"] == broadcast_id
    await server.gateway.drain()
    # Each socket hears it once (the follower in the room from the room only); strangers never.
    for client in [*fan_sockets, second_tab, watching, anonymous]:
        assert len(client.of("stream_started")) == 1, client.events
    assert outsider.of("stream_started") == []


async def test_a_go_live_reaches_followers_on_every_instance(live, sockets, make_user):
    a, b = await live(), await live()
    owner, fan, stranger = await make_user(roles=["creator"]), await make_user(), await make_user()
    await _follow(a, fan, owner)
    stream_id = await create_stream(a, owner)
    # With Redis the follower is on B and the stream starts through A; without Redis instances
    # share nothing, so the follower is on the instance that starts the stream.
    where = b if TEST_REDIS_URL else a
    fan_socket, outsider = await _connected(sockets, where, fan), await _connected(sockets, where, stranger)
    response = await a.http.post(f"/api/v1/streams/{stream_id}/start", headers=owner.headers)
    assert response.status_code == 200, response.text
    started = await fan_socket.wait_for("stream_started")
    assert started["stream_id"] == stream_id
    await a.gateway.drain()
    await where.gateway.drain()
    assert outsider.of("stream_started") == []


async def _connected(sockets: Callable[[], SocketClient], live: Live, user: TestUser) -> SocketClient:
    client = sockets()
    await client.connect(live, user.access_token)
    return client


@pytest.mark.parametrize("followers", [0, 4, 5])
async def test_follower_pages_cover_everyone_once(app, make_user, followers):
    """Keyset pages over the follow table: every follower once, even when they followed at the
    same instant (ties are broken by follower id)."""
    owner = await make_user(roles=["creator"])
    fans = [await make_user() for _ in range(followers)]
    db = app.runtime.db
    at = utcnow()
    async with db.session() as session:
        for fan in fans:
            session.add(Follow(follower_id=fan.id, followee_id=owner.id, created_at=at))
    seen = []
    after = None
    for _ in range(10):
        async with db.session(write=False) as session:
            page = await service.follower_page(session=session, user_id=owner.id, after=after, limit=2)
        seen.extend(uid for _, uid in page)
        if len(page) < 2:
            break
        after = page[-1]
    assert sorted(seen) == sorted(f.id for f in fans) and len(seen) == len(set(seen))
