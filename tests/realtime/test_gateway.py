"""The Socket.IO gateway over real servers: auth, rooms, events and acks, ordering, recovery."""

from __future__ import annotations

import jwt as pyjwt
import pytest
import socketio

from halobuzz.config import AuthSettings, RealtimeSettings
from halobuzz.core.security import JWTCodec
from tests.conftest import TEST_REDIS_URL
from tests.realtime.support import create_stream, eventually, joined, new_id


async def test_anonymous_may_join_and_read_but_not_send(live, sockets, make_user):
    server = await live()
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner, go_live=True)
    anon, talker = sockets(), sockets()
    await anon.connect(server)
    await talker.connect(server, owner.access_token)
    ack = await joined(anon, stream_id)
    assert ack["recovered"] is False and ack["messages"] == [] and ack["last_seq"] == 0
    assert isinstance(ack["epoch"], str) and ack["epoch"]
    refused = await anon.call("send_message", {"stream_id": stream_id, "text": "hi"})
    assert refused == {"ok": False, "error": {"code": "auth_required", "message": refused["error"]["message"]}}
    assert (await anon.call("like_stream", {"stream_id": stream_id}))["error"]["code"] == "auth_required"
    await joined(talker, stream_id)
    sent = await talker.call("send_message", {"stream_id": stream_id, "text": "hello anon"})
    assert sent["ok"] is True
    got = await anon.wait_for("new_message")
    assert got["text"] == "hello anon"


@pytest.mark.parametrize("case", ["garbage", "expired", "revoked", "not_a_string", "bad_auth_shape"])
async def test_bad_tokens_are_refused_at_connect(live, sockets, make_user, case):
    server = await live()
    user = await make_user()
    if case == "garbage":
        auth, code = {"token": "not-a-jwt"}, "invalid_token"
    elif case == "expired":
        settings = server.app.runtime.settings.auth
        expired = JWTCodec(AuthSettings(**{**settings.model_dump(), "access_token_ttl_seconds": -60}))
        claims = pyjwt.decode(user.access_token, options={"verify_signature": False})
        token, _ = expired.issue_access(user_id=user.id, session_id=claims["sid"], roles=["user"])
        auth, code = {"token": token}, "invalid_token"
    elif case == "revoked":
        response = await server.http.post("/api/v1/auth/logout", headers=user.headers)
        assert response.status_code == 204, response.text
        auth, code = {"token": user.access_token}, "session_revoked"
    elif case == "not_a_string":
        auth, code = {"token": 42}, "invalid_token"
    else:
        auth, code = "token", "invalid_auth"
    client = sockets()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.sio.connect(server.url, auth=auth, transports=["websocket"], wait_timeout=10)
    error = client.connect_error
    assert error["data"]["code"] == code, error
    assert error["message"] == error["data"]["message"] and error["message"]


async def test_message_payload_order_and_acks(live, sockets, make_user):
    server = await live()
    owner, viewer = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(server, owner)
    a, b = sockets(), sockets()
    await a.connect(server, owner.access_token)
    await b.connect(server, viewer.access_token)
    await joined(a, stream_id)
    epoch = (await joined(b, stream_id))["epoch"]
    first = await a.call("send_message", {"stream_id": stream_id, "text": "  first  "})
    second = await b.call("send_message", {"stream_id": stream_id, "text": "second"})
    assert first["ok"] and second["ok"]
    message = first["message"]
    assert set(message) == {"id", "stream_id", "user", "text", "epoch", "seq", "created_at"}
    assert message["text"] == "first" and message["epoch"] == epoch and message["seq"] == 1
    assert message["user"] == {"id": str(owner.id), "username": owner.username}
    assert message["stream_id"] == stream_id
    assert second["message"]["seq"] == 2
    for client in (a, b):
        await client.wait_for("new_message", lambda m: m["seq"] == 2)
        assert [m["seq"] for m in client.of("new_message")] == [1, 2]
        assert client.of("new_message")[0] == message


class _CountingTransport:
    """A member's transport that counts its writes (and passes everything through)."""

    def __init__(self, transport):
        self.transport = transport
        self.writes = 0

    def write(self, data):
        self.writes += 1
        self.transport.write(data)

    def __getattr__(self, name):
        return getattr(self.transport, name)


async def test_events_of_one_turn_share_a_flush_in_order_and_respect_floors(live, sockets, make_user):
    server = await live()
    owner, viewer = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(server, owner)
    a, b = sockets(), sockets()
    await a.connect(server, owner.access_token)
    await b.connect(server, viewer.access_token)
    await joined(a, stream_id)
    await joined(b, stream_id)
    gateway = server.gateway
    room = gateway.rooms[f"stream:{stream_id}"]
    conns = {conn.user_id: (sid, conn) for sid, conn in room.members.items()}
    sid_b, _ = conns[viewer.id]
    _, conn_a = conns[owner.id]
    assert conn_a.link is not None and conn_a.link.direct
    counting = _CountingTransport(conn_a.link.transport)
    conn_a.link.transport = counting
    epoch = "e-flush"
    # The viewer's join ack already carried seq 101 of this epoch: it must get 102 only.
    room.floors[sid_b] = (epoch, 101)
    for seq in (101, 102):
        gateway._deliver(room, "new_message", epoch, seq, f'{{"epoch":"{epoch}","seq":{seq}}}')
    gateway._deliver(room, "stream_liked", None, None, '{"like_count":7}')
    assert counting.writes == 0  # nothing is written before the flush
    await a.wait_for("stream_liked")
    await b.wait_for("stream_liked")
    assert [m["seq"] for m in a.of("new_message")] == [101, 102]
    assert [m["seq"] for m in b.of("new_message")] == [102]
    assert [name for name, _ in a.events if name in {"new_message", "stream_liked"}] == [
        "new_message",
        "new_message",
        "stream_liked",
    ]
    assert counting.writes == 1  # three events, one write
    assert sid_b not in room.floors  # a later message passed the floor


async def test_event_payload_validation(live, sockets, make_user):
    server = await live()
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner)
    client = sockets()
    await client.connect(server, owner.access_token)
    cases = [
        ("join_stream", None, "invalid_input"),
        ("join_stream", {"stream_id": "nope"}, "invalid_input"),
        ("join_stream", {"stream_id": new_id()}, "stream_not_found"),
        ("join_stream", {"stream_id": stream_id, "last_seq": -1}, "invalid_input"),
        ("join_stream", {"stream_id": stream_id, "last_seq": "3"}, "invalid_input"),
        ("join_stream", [1, 2], "invalid_input"),
        ("send_message", {"stream_id": stream_id, "text": "before joining"}, "not_joined"),
        ("leave_stream", {}, "invalid_input"),
        ("like_stream", {"stream_id": stream_id}, "not_joined"),
    ]
    for event, data, code in cases:
        ack = await client.call(event, data)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, data, ack)
        assert ack["error"]["message"]
    await joined(client, stream_id)
    for text, code in [
        ("   ", "empty_message"),
        ("x" * 501, "message_too_long"),
        (5, "invalid_input"),
        ("a\x00b", "invalid_text"),
    ]:
        ack = await client.call("send_message", {"stream_id": stream_id, "text": text})
        assert ack["ok"] is False and ack["error"]["code"] == code, (text, ack)
    ok = await client.call("send_message", {"stream_id": stream_id, "text": "é" * 500})
    assert ok["ok"] is True and ok["message"]["seq"] == 1
    ok = await client.call("send_message", {"stream_id": stream_id, "text": "line\nbreak <b>as text</b>"})
    assert ok["message"]["text"] == "line break <b>as text</b>"


async def test_leave_stops_delivery_and_rejoin_recovers(live, sockets, make_user):
    server = await live()
    owner, viewer = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(server, owner)
    talker, listener = sockets(), sockets()
    await talker.connect(server, owner.access_token)
    await listener.connect(server, viewer.access_token)
    await joined(talker, stream_id)
    ack = await joined(listener, stream_id)
    assert await listener.call("leave_stream", {"stream_id": stream_id}) == {"ok": True}
    assert await listener.call("leave_stream", {"stream_id": stream_id}) == {"ok": True}
    sent = await talker.call("send_message", {"stream_id": stream_id, "text": "while away"})
    again = await joined(listener, stream_id, epoch=ack["epoch"], last_seq=ack["last_seq"])
    # Frames reach a connection in order: the message would have arrived before this ack.
    assert listener.of("new_message") == []
    assert again["recovered"] is True
    assert [m["id"] for m in again["messages"]] == [sent["message"]["id"]]
    assert (await listener.call("send_message", {"stream_id": stream_id, "text": "back"}))["ok"] is True


async def test_recovery_after_a_dropped_connection(live, sockets, make_user):
    server = await live()
    owner, viewer = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(server, owner)
    talker, listener = sockets(), sockets()
    await talker.connect(server, owner.access_token)
    await listener.connect(server, viewer.access_token)
    await joined(talker, stream_id)
    await joined(listener, stream_id)
    await talker.call("send_message", {"stream_id": stream_id, "text": "seen"})
    seen = await listener.wait_for("new_message")
    await listener.close()
    missed = [
        (await talker.call("send_message", {"stream_id": stream_id, "text": f"missed {i}"}))["message"]
        for i in range(3)
    ]
    back = sockets()
    await back.connect(server, viewer.access_token)
    ack = await joined(back, stream_id, epoch=seen["epoch"], last_seq=seen["seq"])
    assert ack["recovered"] is True
    assert ack["messages"] == missed
    assert ack["last_seq"] == missed[-1]["seq"] and ack["epoch"] == seen["epoch"]
    # Nothing missed: an empty, recovered replay.
    up_to_date = await joined(back, stream_id, epoch=ack["epoch"], last_seq=ack["last_seq"])
    assert up_to_date["recovered"] is True and up_to_date["messages"] == []
    # An unknown epoch, or a position past the end: the last messages instead.
    stale = await joined(back, stream_id, epoch="0000", last_seq=1)
    assert stale["recovered"] is False
    assert [m["text"] for m in stale["messages"]] == ["seen", "missed 0", "missed 1", "missed 2"]
    ahead = await joined(back, stream_id, epoch=ack["epoch"], last_seq=99)
    assert ahead["recovered"] is False and len(ahead["messages"]) == 4


async def test_recovery_gives_up_beyond_the_window(live, sockets, make_user):
    server = await live(realtime=RealtimeSettings(recovery_max_messages=5, join_history=3))
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner)
    client = sockets()
    await client.connect(server, owner.access_token)
    ack = await joined(client, stream_id)
    for i in range(6):
        assert (await client.call("send_message", {"stream_id": stream_id, "text": f"m{i}"}))["ok"]
    too_far = await joined(client, stream_id, epoch=ack["epoch"], last_seq=0)
    assert too_far["recovered"] is False
    assert [m["text"] for m in too_far["messages"]] == ["m3", "m4", "m5"]
    near = await joined(client, stream_id, epoch=ack["epoch"], last_seq=2)
    assert near["recovered"] is True and [m["seq"] for m in near["messages"]] == [3, 4, 5, 6]


async def test_join_without_window_reads_stored_history(live, sockets, make_user):
    first = await live()
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(first, owner)
    client = sockets()
    await client.connect(first, owner.access_token)
    await joined(client, stream_id)
    sent = [
        (await client.call("send_message", {"stream_id": stream_id, "text": f"old {i}"}))["message"] for i in range(3)
    ]
    await client.close()
    await first.stop()  # flushes the batch writer on the way down
    second = await live()
    again = sockets()
    await again.connect(second, owner.access_token)
    ack = await joined(again, stream_id, epoch=sent[-1]["epoch"], last_seq=sent[-1]["seq"])
    if TEST_REDIS_URL:
        # The room's log lives in Redis and outlives the instance.
        assert ack["recovered"] is True and ack["epoch"] == sent[-1]["epoch"] and ack["messages"] == []
    else:
        # A new process starts a new epoch; the stored history fills in.
        assert ack["recovered"] is False and ack["epoch"] != sent[-1]["epoch"]
        assert [m["id"] for m in ack["messages"]] == [m["id"] for m in sent]


async def test_chat_history_api(live, sockets, make_user):
    server = await live()
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner)
    client = sockets()
    await client.connect(server, owner.access_token)
    await joined(client, stream_id)
    sent = [
        (await client.call("send_message", {"stream_id": stream_id, "text": f"msg {i}"}))["message"] for i in range(5)
    ]

    async def stored() -> bool:
        response = await server.http.get(f"/api/v1/streams/{stream_id}/chat")
        return response.status_code == 200 and len(response.json()["items"]) == 5

    await eventually(stored, what="batched chat writes")
    page = (await server.http.get(f"/api/v1/streams/{stream_id}/chat", params={"limit": 2})).json()
    assert [m["text"] for m in page["items"]] == ["msg 3", "msg 4"]
    assert page["items"][1] == sent[4]
    older = (
        await server.http.get(f"/api/v1/streams/{stream_id}/chat", params={"limit": 2, "before": page["next_cursor"]})
    ).json()
    assert [m["text"] for m in older["items"]] == ["msg 1", "msg 2"]
    oldest = (
        await server.http.get(f"/api/v1/streams/{stream_id}/chat", params={"limit": 2, "cursor": older["next_cursor"]})
    ).json()
    assert [m["text"] for m in oldest["items"]] == ["msg 0"] and oldest["next_cursor"] is None
    by_id = (await server.http.get(f"/api/v1/streams/{stream_id}/chat", params={"before": sent[2]["id"]})).json()
    assert [m["text"] for m in by_id["items"]] == ["msg 0", "msg 1"]
    for params, status, code in [
        ({"before": "garbage"}, 422, "invalid_cursor"),
        ({"before": new_id()}, 404, "message_not_found"),
        ({"limit": 0}, 422, "invalid_input"),
        ({"limit": 101}, 422, "invalid_input"),
    ]:
        response = await server.http.get(f"/api/v1/streams/{stream_id}/chat", params=params)
        assert response.status_code == status and response.json()["error"]["code"] == code, (params, response.text)
    missing = await server.http.get(f"/api/v1/streams/{new_id()}/chat")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "stream_not_found"
    bad = await server.http.get("/api/v1/streams/not-a-uuid/chat")
    assert bad.status_code == 422


async def test_polling_transport_works(live, sockets, make_user):
    server = await live()
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner)
    polling, ws = sockets(), sockets()
    await polling.connect(server, owner.access_token, transports=("polling",))
    await ws.connect(server, owner.access_token)
    await joined(polling, stream_id)
    await joined(ws, stream_id)
    assert (await ws.call("send_message", {"stream_id": stream_id, "text": "over polling"}))["ok"]
    assert (await polling.wait_for("new_message"))["text"] == "over polling"
