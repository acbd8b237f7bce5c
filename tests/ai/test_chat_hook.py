"""Chat through the real-time moderation hook on a real server: allowed, held, blocked."""

from __future__ import annotations

from tests.realtime.support import create_stream, joined, live, sockets

__all__ = ["live", "sockets"]


async def test_chat_is_moderated_before_broadcast(live, sockets, make_user):
    server = await live()
    owner, viewer = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(server, owner, go_live=True)
    listener, talker = sockets(), sockets()
    await listener.connect(server, owner.access_token)
    await talker.connect(server, viewer.access_token)
    await joined(listener, stream_id)
    await joined(talker, stream_id)

    blocked = await talker.call("send_message", {"stream_id": stream_id, "text": "you r3tard"})
    assert blocked["ok"] is False and blocked["error"]["code"] == "message_rejected"
    assert "slur" in blocked["error"]["message"]

    held = await talker.call("send_message", {"stream_id": stream_id, "text": "what the fuuuck"})
    assert held["ok"] is True and held["held"] is True and "profanity" in held["reason"]

    ok = await talker.call("send_message", {"stream_id": stream_id, "text": "greetings from Scunthorpe"})
    assert ok["ok"] is True and "held" not in ok
    got = await listener.wait_for("new_message")
    assert got["text"] == "greetings from Scunthorpe"
    assert [m["text"] for m in listener.of("new_message")] == ["greetings from Scunthorpe"]
