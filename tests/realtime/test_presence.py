"""Viewer counts and likes: unique viewers, throttled announcements, the stored counts."""

from __future__ import annotations

import itertools

import pytest
import socketio

from halobuzz.config import RealtimeSettings
from tests.conftest import TEST_REDIS_URL
from tests.realtime.support import create_stream, eventually, joined

FAST = RealtimeSettings(count_interval_seconds=0.3)


def _count_is(n: int):
    return lambda data: data["viewer_count"] == n


async def test_unique_viewers_are_counted_stored_and_announced(live, sockets, make_user):
    server = await live(realtime=FAST)
    owner, fan = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(server, owner, go_live=True)
    watcher = sockets()
    await watcher.connect(server)
    await joined(watcher, stream_id)
    await watcher.wait_for("viewer_count_changed", _count_is(1))
    fan_tabs = [sockets(), sockets()]
    for tab in fan_tabs:  # one user in two tabs is one viewer
        await tab.connect(server, fan.access_token)
        await joined(tab, stream_id)
    anon = sockets()
    await anon.connect(server)
    await joined(anon, stream_id)  # each anonymous connection is a viewer
    event = await watcher.wait_for("viewer_count_changed", _count_is(3))
    assert event == {"stream_id": stream_id, "viewer_count": 3}

    async def stored(n: int) -> bool:
        body = (await server.http.get(f"/api/v1/streams/{stream_id}")).json()
        return body["viewer_count"] == n and body["current_broadcast"]["peak_viewers"] >= 3

    await eventually(lambda: stored(3), what="viewer_count 3 stored")
    await fan_tabs[0].call("leave_stream", {"stream_id": stream_id})
    await fan_tabs[1].close()
    await anon.close()
    await watcher.wait_for("viewer_count_changed", _count_is(1))
    await eventually(lambda: stored(1), what="viewer_count 1 stored, peak kept")
    assert all(v["stream_id"] == stream_id for v in watcher.of("viewer_count_changed"))
    # At most one announcement per interval per stream.
    times = watcher.times_of("viewer_count_changed")
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(times)), times


async def test_viewers_waiting_for_an_offline_stream_are_counted_when_it_starts(live, sockets, make_user):
    server = await live(realtime=FAST)
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner)
    watcher = sockets()
    await watcher.connect(server)
    await joined(watcher, stream_id)
    await watcher.wait_for("viewer_count_changed", _count_is(1))
    response = await server.http.post(f"/api/v1/streams/{stream_id}/start", headers=owner.headers)
    assert response.status_code == 200
    assert response.json()["viewer_count"] == 0
    # The stored count catches up at the next recount (a join here; stream_started triggers one too).
    other = sockets()
    await other.connect(server)
    await joined(other, stream_id)

    async def stored() -> bool:
        return (await server.http.get(f"/api/v1/streams/{stream_id}")).json()["viewer_count"] == 2

    await eventually(stored, what="viewer_count after start")


async def test_likes_count_per_broadcast_and_are_announced(live, sockets, make_user):
    server = await live(realtime=FAST)
    owner, fan = await make_user(roles=["creator"]), await make_user()
    offline = await create_stream(server, owner, title="offline")
    stream_id = await create_stream(server, owner, go_live=True)
    client = sockets()
    await client.connect(server, fan.access_token)
    await joined(client, offline)
    refused = await client.call("like_stream", {"stream_id": offline})
    assert refused["ok"] is False and refused["error"]["code"] == "stream_not_live"
    await joined(client, stream_id)
    counts = [(await client.call("like_stream", {"stream_id": stream_id}))["like_count"] for _ in range(3)]
    assert counts == [1, 2, 3]
    await client.wait_for("stream_liked", lambda d: d == {"stream_id": stream_id, "like_count": 3})
    assert (await server.http.get(f"/api/v1/streams/{stream_id}")).json()["like_count"] == 3
    limited = None
    for _ in range(30):
        ack = await client.call("like_stream", {"stream_id": stream_id})
        if not ack["ok"]:
            limited = ack
            break
    assert limited is not None and limited["error"]["code"] == "rate_limited"


async def test_rooms_are_shared_by_instances_only_over_redis(live, sockets, make_user):
    a, b = await live(realtime=FAST), await live(realtime=FAST)
    owner, viewer = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(a, owner, go_live=True)
    on_a, on_b = sockets(), sockets()
    await on_a.connect(a, owner.access_token)
    await on_b.connect(b, viewer.access_token)
    ack_a = await joined(on_a, stream_id)
    ack_b = await joined(on_b, stream_id)
    if not TEST_REDIS_URL:
        # One process, one world: each instance has its own room, epoch and count.
        assert ack_a["epoch"] != ack_b["epoch"]
        sent_b = await on_b.call("send_message", {"stream_id": stream_id, "text": "from b"})
        sent_a = await on_a.call("send_message", {"stream_id": stream_id, "text": "from a"})
        assert sent_a["message"]["seq"] == 1 and sent_b["message"]["seq"] == 1
        await on_a.wait_for("new_message", lambda m: m["text"] == "from a")
        assert [m["text"] for m in on_a.of("new_message")] == ["from a"]
        await on_a.wait_for("viewer_count_changed", _count_is(1))
        cross = await joined(on_b, stream_id, epoch=ack_a["epoch"], last_seq=0)
        assert cross["recovered"] is False
        return
    assert ack_a["epoch"] == ack_b["epoch"]
    for client in (on_a, on_b):
        await client.wait_for("viewer_count_changed", _count_is(2))
    # Messages from either instance reach both, in one order; seqs are never reused.
    results = []
    for i in range(5):
        results.append(await on_a.call("send_message", {"stream_id": stream_id, "text": f"a{i}"}))
        results.append(await on_b.call("send_message", {"stream_id": stream_id, "text": f"b{i}"}))
    seqs = sorted(r["message"]["seq"] for r in results)
    assert seqs == list(range(1, 11))
    for client in (on_a, on_b):
        await client.wait_for("new_message", lambda m: m["seq"] == 10)
        assert [m["seq"] for m in client.of("new_message")] == list(range(1, 11))
    # Recovery on the other instance: drop from B, miss messages sent on A, come back to B.
    last = on_b.of("new_message")[-1]
    await on_b.close()
    missed = [(await on_a.call("send_message", {"stream_id": stream_id, "text": f"m{i}"}))["message"] for i in range(3)]
    back = sockets()
    await back.connect(b, viewer.access_token)
    ack = await joined(back, stream_id, epoch=last["epoch"], last_seq=last["seq"])
    assert ack["recovered"] is True and ack["messages"] == missed


async def test_a_dead_instance_stops_counting(live, sockets, make_user):
    settings = RealtimeSettings(count_interval_seconds=0.2, presence_heartbeat_seconds=0.3, presence_ttl_seconds=1.0)
    a, b = await live(realtime=settings), await live(realtime=settings)
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(a, owner, go_live=True)
    on_a, on_b = sockets(), sockets()
    await on_a.connect(a)
    await on_b.connect(b)
    await joined(on_a, stream_id)
    await joined(on_b, stream_id)
    if not TEST_REDIS_URL:
        await on_a.wait_for("viewer_count_changed", _count_is(1))
        await on_b.wait_for("viewer_count_changed", _count_is(1))
        return
    await on_a.wait_for("viewer_count_changed", _count_is(2))
    # B stops heartbeating, as when its process dies: its viewers stop counting after the TTL.
    for task in b.gateway._loops:
        task.cancel()
    await on_a.wait_for("viewer_count_changed", _count_is(1), timeout=10)


async def test_stream_start_and_end_announcements(live, sockets, make_user):
    server = await live(realtime=FAST)
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner)
    watcher = sockets()
    await watcher.connect(server)
    await joined(watcher, stream_id)
    await watcher.wait_for("viewer_count_changed", _count_is(1))
    # Going live through the streams API announces it to the room after commit.
    started = (await server.http.post(f"/api/v1/streams/{stream_id}/start", headers=owner.headers)).json()
    broadcast = started["current_broadcast"]
    event = await watcher.wait_for("stream_started")
    assert event == {
        "stream_id": stream_id,
        "broadcast_id": broadcast["id"],
        "title": started["title"],
        "started_at": broadcast["started_at"],
    }

    # The viewer who was waiting is counted on the new broadcast.
    async def counted() -> bool:
        body = (await server.http.get(f"/api/v1/streams/{stream_id}")).json()
        return body["viewer_count"] == 1 and body["current_broadcast"]["peak_viewers"] == 1

    await eventually(counted, what="waiting viewer counted after start")
    ended = (await server.http.post(f"/api/v1/streams/{stream_id}/end", headers=owner.headers)).json()
    assert ended["status"] == "offline"
    event = await watcher.wait_for("stream_ended")
    assert event["stream_id"] == stream_id and event["broadcast_id"] == broadcast["id"]
    assert event["ended_at"].endswith("Z")
    assert len(watcher.of("stream_started")) == 1 and len(watcher.of("stream_ended")) == 1
    # A refused start (already live / not live) announces nothing.
    refused = await server.http.post(f"/api/v1/streams/{stream_id}/end", headers=owner.headers)
    assert refused.status_code == 409
    assert len(watcher.of("stream_ended")) == 1


async def test_connections_per_address_are_limited(live, sockets):
    server = await live(
        rate_limit={"enabled": True, "per_ip_per_minute": 1000},
        realtime=RealtimeSettings(connects_per_ip_per_minute=2),
    )
    for _ in range(2):
        await sockets().connect(server)
    refused = sockets()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.sio.connect(server.url, transports=["websocket"], wait_timeout=10)
    assert refused.connect_error["data"]["code"] == "rate_limited"
