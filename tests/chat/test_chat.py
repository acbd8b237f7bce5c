"""Chat rules over real servers: modes, limits, duplicates, moderation actions, the hook."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from halobuzz.chat.models import ChatMessage
from halobuzz.chat.service import Verdict
from halobuzz.config import ChatSettings
from tests.conftest import assert_error
from tests.realtime.support import create_stream, eventually, joined, new_id


async def _room(live, sockets, make_user, *, modes=None, **settings):
    """A server, an owner and a viewer both joined to the owner's stream."""
    server = await live(**settings)
    owner, viewer = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(server, owner)
    owner_socket, viewer_socket = sockets(), sockets()
    await owner_socket.connect(server, owner.access_token)
    await viewer_socket.connect(server, viewer.access_token)
    await joined(owner_socket, stream_id)
    await joined(viewer_socket, stream_id)
    if modes:
        response = await server.http.patch(f"/api/v1/streams/{stream_id}/chat/modes", json=modes, headers=owner.headers)
        assert response.status_code == 200, response.text
    return server, owner, viewer, stream_id, owner_socket, viewer_socket


async def _say(client, stream_id, text):
    return await client.call("send_message", {"stream_id": stream_id, "text": text})


def _refused(ack, code):
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert ack["error"]["message"]


async def test_chat_modes_api(live, sockets, make_user):
    server, owner, viewer, stream_id, _owner_socket, viewer_socket = await _room(live, sockets, make_user)
    url = f"/api/v1/streams/{stream_id}/chat/modes"
    off = {"slow_mode_seconds": 0, "followers_only_minutes": None, "subscribers_only": False, "emote_only": False}
    assert (await server.http.get(url)).json() == off
    assert_error(await server.http.patch(url, json={"emote_only": True}), 401, "not_authenticated")
    assert_error(
        await server.http.patch(url, json={"emote_only": True}, headers=viewer.headers), 403, "not_chat_moderator"
    )
    for body in (
        {},
        {"slow_mode_seconds": -1},
        {"slow_mode_seconds": None},
        {"emote_only": "yes"},
        {"nope": 1},
        {"followers_only_minutes": 10**9},
        {"slow_mode_seconds": 1.5},
    ):
        assert_error(await server.http.patch(url, json=body, headers=owner.headers), 422, "invalid_input")
    assert_error(
        await server.http.patch(
            f"/api/v1/streams/{new_id()}/chat/modes", json={"emote_only": True}, headers=owner.headers
        ),
        404,
        "stream_not_found",
    )
    assert_error(await server.http.get(f"/api/v1/streams/{new_id()}/chat/modes"), 404, "stream_not_found")
    response = await server.http.patch(
        url, json={"slow_mode_seconds": 5, "followers_only_minutes": 0}, headers=owner.headers
    )
    assert response.status_code == 200
    expected = {**off, "slow_mode_seconds": 5, "followers_only_minutes": 0}
    assert response.json() == expected
    event = await viewer_socket.wait_for("chat_mode_changed")
    assert event == {"stream_id": stream_id, "modes": expected}
    response = await server.http.patch(url, json={"followers_only_minutes": None}, headers=owner.headers)
    assert response.json() == {**expected, "followers_only_minutes": None}
    assert (await server.http.get(url)).json() == {**expected, "followers_only_minutes": None}


async def test_slow_mode(live, sockets, make_user):
    _server, _owner, _viewer, stream_id, owner_socket, viewer_socket = await _room(
        live, sockets, make_user, modes={"slow_mode_seconds": 60}
    )
    assert (await _say(viewer_socket, stream_id, "one"))["ok"]
    refused = await _say(viewer_socket, stream_id, "two")
    _refused(refused, "slow_mode")
    assert refused["error"]["details"] == {"seconds": 60}
    assert (await _say(owner_socket, stream_id, "owner one"))["ok"]
    assert (await _say(owner_socket, stream_id, "owner two"))["ok"]


async def test_followers_only(live, sockets, make_user):
    server, owner, viewer, stream_id, owner_socket, viewer_socket = await _room(
        live, sockets, make_user, modes={"followers_only_minutes": 0}
    )
    _refused(await _say(viewer_socket, stream_id, "hello"), "followers_only")
    response = await server.http.post(f"/api/v1/users/{owner.id}/follow", headers=viewer.headers)
    assert response.status_code == 200, response.text
    assert (await _say(viewer_socket, stream_id, "hello"))["ok"]
    await server.http.patch(
        f"/api/v1/streams/{stream_id}/chat/modes", json={"followers_only_minutes": 10}, headers=owner.headers
    )
    refused = await _say(viewer_socket, stream_id, "too new")
    _refused(refused, "followers_only")
    assert refused["error"]["details"] == {"minutes": 10}
    assert (await _say(owner_socket, stream_id, "owners are exempt"))["ok"]


async def test_subscribers_only(live, sockets, make_user):
    server, owner, viewer, stream_id, owner_socket, viewer_socket = await _room(
        live, sockets, make_user, modes={"subscribers_only": True}
    )
    _refused(await _say(viewer_socket, stream_id, "hi"), "subscribers_only")
    assert (await _say(owner_socket, stream_id, "hi"))["ok"]
    subscribed = {viewer.id}

    async def check(_session, owner_id, user_id):
        assert owner_id == owner.id
        return user_id in subscribed

    server.gateway.subscription_check = check
    assert (await _say(viewer_socket, stream_id, "now subscribed"))["ok"]


async def test_emote_only(live, sockets, make_user):
    _server, _owner, _viewer, stream_id, owner_socket, viewer_socket = await _room(
        live, sockets, make_user, modes={"emote_only": True}
    )
    _refused(await _say(viewer_socket, stream_id, "words"), "emote_only")
    _refused(await _say(viewer_socket, stream_id, "😀 mixed"), "emote_only")
    for text in ("😀", "👍🏽 :heart: 🇳🇵", "👨‍👩‍👧 ❤️"):
        assert (await _say(viewer_socket, stream_id, text))["ok"], text
    assert (await _say(owner_socket, stream_id, "owners may type"))["ok"]


async def test_rate_limits(live, sockets, make_user):
    _server, _owner, _viewer, stream_id, owner_socket, viewer_socket = await _room(
        live, sockets, make_user, chat=ChatSettings(rate_limit_messages=3, rate_limit_privileged_messages=5)
    )
    for i in range(3):
        assert (await _say(viewer_socket, stream_id, f"v{i}"))["ok"]
    refused = await _say(viewer_socket, stream_id, "v3")
    _refused(refused, "rate_limited")
    assert refused["error"]["details"] == {"limit": 3, "window_seconds": 30}
    for i in range(5):
        assert (await _say(owner_socket, stream_id, f"o{i}"))["ok"]
    _refused(await _say(owner_socket, stream_id, "o5"), "rate_limited")


async def test_duplicate_messages_are_refused(live, sockets, make_user):
    _server, _owner, _viewer, stream_id, owner_socket, viewer_socket = await _room(live, sockets, make_user)
    assert (await _say(viewer_socket, stream_id, "Hello World"))["ok"]
    _refused(await _say(viewer_socket, stream_id, "Hello World"), "duplicate_message")
    _refused(await _say(viewer_socket, stream_id, "  hello   world "), "duplicate_message")
    assert (await _say(owner_socket, stream_id, "Hello World"))["ok"]  # another user
    assert (await _say(viewer_socket, stream_id, "Hello World!"))["ok"]


async def test_delete_messages(live, sockets, make_user):
    server, owner, viewer, stream_id, _owner_socket, viewer_socket = await _room(live, sockets, make_user)
    first = (await _say(viewer_socket, stream_id, "keep"))["message"]
    bad = (await _say(viewer_socket, stream_id, "remove me"))["message"]
    url = f"/api/v1/streams/{stream_id}/chat/messages/{bad['id']}"
    assert_error(await server.http.delete(url, headers=viewer.headers), 403, "not_chat_moderator")
    assert_error(await server.http.delete(url), 401)
    response = await server.http.delete(url, headers=owner.headers)
    assert response.status_code == 204
    event = await viewer_socket.wait_for("message_deleted")
    assert event == {"stream_id": stream_id, "message_id": bad["id"]}
    assert (await server.http.delete(url, headers=owner.headers)).status_code == 204  # idempotent
    assert_error(
        await server.http.delete(f"/api/v1/streams/{stream_id}/chat/messages/{new_id()}", headers=owner.headers),
        404,
        "message_not_found",
    )
    # Gone from replays and from history.
    again = await joined(viewer_socket, stream_id, epoch=first["epoch"], last_seq=0)
    assert [m["id"] for m in again["messages"]] == [first["id"]]
    stale = await joined(viewer_socket, stream_id)
    assert [m["id"] for m in stale["messages"]] == [first["id"]]

    async def history() -> bool:
        items = (await server.http.get(f"/api/v1/streams/{stream_id}/chat")).json()["items"]
        return [m["id"] for m in items] == [first["id"]]

    await eventually(history, what="history without the deleted message")


async def test_delete_before_the_batch_is_written(live, sockets, make_user, app):
    server, owner, _viewer, stream_id, _owner_socket, viewer_socket = await _room(
        live, sockets, make_user, chat=ChatSettings(flush_interval_ms=60_000, flush_max_rows=10_000)
    )
    sent = (await _say(viewer_socket, stream_id, "quick delete"))["message"]
    response = await server.http.delete(
        f"/api/v1/streams/{stream_id}/chat/messages/{sent['id']}", headers=owner.headers
    )
    assert response.status_code == 204
    await viewer_socket.wait_for("message_deleted")
    await server.gateway.writer.flush()
    async with app.runtime.db.session(write=False) as session:
        row = await session.get(ChatMessage, uuid.UUID(sent["id"]))
    assert row is not None and row.status == "deleted" and row.seq == sent["seq"] and row.text == "quick delete"


async def test_timeouts_and_bans(live, sockets, make_user):
    server, owner, viewer, stream_id, owner_socket, viewer_socket = await _room(live, sockets, make_user)
    base = f"/api/v1/streams/{stream_id}/chat"
    assert_error(
        await server.http.post(
            f"{base}/timeouts", json={"user_id": str(owner.id), "duration_seconds": 60}, headers=viewer.headers
        ),
        403,
        "not_chat_moderator",
    )
    for body, status, code in [
        ({"user_id": str(viewer.id), "duration_seconds": 0}, 422, "invalid_input"),
        ({"user_id": str(viewer.id), "duration_seconds": 10**9}, 422, "invalid_duration"),
        ({"user_id": "x", "duration_seconds": 5}, 422, "invalid_input"),
        ({"user_id": str(owner.id), "duration_seconds": 5}, 422, "cannot_target_self"),
        ({"user_id": new_id(), "duration_seconds": 5}, 404, "user_not_found"),
    ]:
        assert_error(await server.http.post(f"{base}/timeouts", json=body, headers=owner.headers), status, code)
    response = await server.http.post(
        f"{base}/timeouts",
        json={"user_id": str(viewer.id), "duration_seconds": 600, "reason": "spam"},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user"] == {"id": str(viewer.id), "username": viewer.username} and body["reason"] == "spam"
    event = await owner_socket.wait_for("user_timed_out")
    assert event["user_id"] == str(viewer.id) and event["until"] == body["until"] and event["banned"] is False
    refused = await _say(viewer_socket, stream_id, "let me talk")
    _refused(refused, "timed_out")
    listed = (await server.http.get(f"{base}/bans", headers=owner.headers)).json()["items"]
    assert [b["user"]["id"] for b in listed] == [str(viewer.id)]
    assert_error(await server.http.get(f"{base}/bans", headers=viewer.headers), 403, "not_chat_moderator")
    assert (await server.http.delete(f"{base}/bans/{viewer.id}", headers=owner.headers)).status_code == 204
    assert (await _say(viewer_socket, stream_id, "let me talk"))["ok"]
    response = await server.http.post(f"{base}/bans", json={"user_id": str(viewer.id)}, headers=owner.headers)
    assert response.status_code == 201 and response.json()["until"] is None
    event = await owner_socket.wait_for("user_timed_out", lambda e: e["banned"])
    assert event == {"stream_id": stream_id, "user_id": str(viewer.id), "until": None, "banned": True}
    _refused(await _say(viewer_socket, stream_id, "again"), "banned_from_chat")
    assert (await server.http.delete(f"{base}/bans/{viewer.id}", headers=owner.headers)).status_code == 204
    assert (await server.http.delete(f"{base}/bans/{viewer.id}", headers=owner.headers)).status_code == 204
    assert (await _say(viewer_socket, stream_id, "free"))["ok"]


async def test_channel_moderators(live, sockets, make_user):
    server, owner, viewer, stream_id, _owner_socket, viewer_socket = await _room(live, sockets, make_user)
    mod, other_mod = await make_user(), await make_user()
    base = f"/api/v1/streams/{stream_id}/chat"
    assert_error(await server.http.put(f"{base}/moderators/{mod.id}", headers=viewer.headers), 403, "not_stream_owner")
    assert_error(await server.http.put(f"{base}/moderators/{new_id()}", headers=owner.headers), 404, "user_not_found")
    assert_error(
        await server.http.put(f"{base}/moderators/{owner.id}", headers=owner.headers), 422, "cannot_target_self"
    )
    for user in (mod, other_mod, mod):
        response = await server.http.put(f"{base}/moderators/{user.id}", headers=owner.headers)
        assert response.status_code == 200, response.text
    listed = (await server.http.get(f"{base}/moderators")).json()["items"]
    assert [m["user"]["username"] for m in listed] == [mod.username, other_mod.username]
    # A moderator deletes and times out viewers, but not other moderators or the owner.
    said = (await _say(viewer_socket, stream_id, "rude"))["message"]
    assert (await server.http.delete(f"{base}/messages/{said['id']}", headers=mod.headers)).status_code == 204
    response = await server.http.post(
        f"{base}/timeouts", json={"user_id": str(viewer.id), "duration_seconds": 30}, headers=mod.headers
    )
    assert response.status_code == 201
    assert_error(
        await server.http.post(
            f"{base}/timeouts", json={"user_id": str(other_mod.id), "duration_seconds": 30}, headers=mod.headers
        ),
        403,
        "cannot_moderate_moderator",
    )
    assert_error(
        await server.http.post(f"{base}/bans", json={"user_id": str(owner.id)}, headers=mod.headers),
        403,
        "cannot_moderate_owner",
    )
    assert_error(await server.http.put(f"{base}/moderators/{viewer.id}", headers=mod.headers), 403, "not_stream_owner")
    response = await server.http.patch(f"{base}/modes", json={"emote_only": True}, headers=mod.headers)
    assert response.status_code == 200
    # Moderators are exempt from chat modes.
    mod_socket = sockets()
    await mod_socket.connect(server, mod.access_token)
    await joined(mod_socket, stream_id)
    assert (await _say(mod_socket, stream_id, "mods may type"))["ok"]
    assert (await server.http.delete(f"{base}/moderators/{mod.id}", headers=owner.headers)).status_code == 204
    assert (await server.http.delete(f"{base}/moderators/{mod.id}", headers=owner.headers)).status_code == 204
    assert_error(
        await server.http.delete(f"{base}/messages/{said['id']}", headers=mod.headers), 403, "not_chat_moderator"
    )
    _refused(await _say(mod_socket, stream_id, "no longer"), "emote_only")


async def test_users_blocked_by_the_owner_cannot_chat(live, sockets, make_user):
    server, owner, viewer, stream_id, _owner_socket, viewer_socket = await _room(live, sockets, make_user)
    response = await server.http.post(f"/api/v1/users/{viewer.id}/block", headers=owner.headers)
    assert response.status_code == 200, response.text
    _refused(await _say(viewer_socket, stream_id, "hi"), "blocked_by_owner")
    await server.http.delete(f"/api/v1/users/{viewer.id}/block", headers=owner.headers)
    assert (await _say(viewer_socket, stream_id, "hi"))["ok"]


async def test_moderation_hook(live, sockets, make_user, app):
    server, owner, viewer, stream_id, owner_socket, viewer_socket = await _room(live, sockets, make_user)
    seen = []

    async def hook(context):
        seen.append(context)
        if "spam" in context.text:
            return Verdict("reject", "links to spam are not allowed")
        if "hmm" in context.text:
            return Verdict("hold", "needs review")
        if "crash" in context.text:
            raise RuntimeError("moderation service down")
        return Verdict("allow")

    server.gateway.moderation_hook = hook
    rejected = await _say(viewer_socket, stream_id, "buy spam")
    assert rejected == {"ok": False, "error": {"code": "message_rejected", "message": "links to spam are not allowed"}}
    held = await _say(viewer_socket, stream_id, "hmm this")
    assert held["ok"] is True and held["held"] is True and "seq" not in held["message"]
    _refused(await _say(viewer_socket, stream_id, "crash it"), "moderation_unavailable")
    allowed = await _say(viewer_socket, stream_id, "fine")
    assert allowed["ok"] and allowed["message"]["seq"] == 1
    await owner_socket.wait_for("new_message")
    assert [m["text"] for m in owner_socket.of("new_message")] == ["fine"]
    context = seen[0]
    assert context.stream_id == uuid.UUID(stream_id) and context.user_id == viewer.id and context.privileged is False
    assert context.owner_id == owner.id and context.username == viewer.username
    await server.gateway.writer.flush()
    async with app.runtime.db.session(write=False) as session:
        rows = (await session.scalars(select(ChatMessage).order_by(ChatMessage.created_at))).all()
    assert [(r.text, r.status) for r in rows] == [("hmm this", "held"), ("fine", "visible")]
    items = (await server.http.get(f"/api/v1/streams/{stream_id}/chat")).json()["items"]
    assert [m["text"] for m in items] == ["fine"]
