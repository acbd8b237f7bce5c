"""Decisions take effect through the real API and sockets: removed messages leave the room, a mute
stops a user's chat in one stream, a timeout everywhere, a ban disconnects; the banned user appeals
with the token sign-in gives them, and a different administrator's reversal restores everything."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from halobuzz.accounts.models import User
from tests.conftest import PASSWORD, assert_error
from tests.realtime.support import create_stream, eventually, joined, live, sockets

__all__ = ["live", "sockets"]
API = "/api/v1"


async def decide(http: Any, mod: Any, target_type: str, target_id: str, reporter: Any, **decision: Any) -> dict:
    r = await http.post(
        f"{API}/reports",
        json={"target_type": target_type, "target_id": target_id, "reason": "harassment"},
        headers=reporter.headers,
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["case_id"]
    assert (await http.post(f"{API}/moderation/cases/{case_id}/claim", headers=mod.headers)).status_code == 200
    r = await http.post(f"{API}/moderation/cases/{case_id}/decision", json=decision, headers=mod.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_actions_take_effect_and_appeals_reverse_them(app, live, sockets, make_user):
    server = await live()
    http = server.http
    owner, other_owner = await make_user(roles=["creator"]), await make_user(roles=["creator"])
    troll, reporter = await make_user(), await make_user()
    mod_a, mod_b = await make_user(roles=["moderator"]), await make_user(roles=["moderator"])
    admin_a, admin_b = await make_user(roles=["admin"]), await make_user(roles=["admin"])
    stream = await create_stream(server, owner, go_live=True)
    elsewhere = await create_stream(server, other_owner, go_live=True)
    watcher, talker = sockets(), sockets()
    await watcher.connect(server, owner.access_token)
    await talker.connect(server, troll.access_token)
    await joined(watcher, stream)
    await joined(talker, stream)
    await joined(talker, elsewhere)

    # remove_content: the message leaves the room for everyone.
    sent = await talker.call("send_message", {"stream_id": stream, "text": "you all are losers"})
    message_id = sent["message"]["id"]
    await watcher.wait_for("new_message", lambda m: m["id"] == message_id)

    async def written(mid: str = message_id) -> bool:
        r = await http.get(f"{API}/streams/{stream}/chat")
        return any(m["id"] == mid for m in r.json()["items"])

    await eventually(written, what="the message to be stored")
    removed = await decide(http, mod_a, "message", message_id, reporter, action="remove_content", reason="insults")
    deleted = await watcher.wait_for("message_deleted")
    assert deleted == {"stream_id": stream, "message_id": message_id}
    assert not await written()

    # mute: no more chat in this stream, still chat in another.
    second = await talker.call("send_message", {"stream_id": stream, "text": "still here"})
    await eventually(lambda: written(second["message"]["id"]), what="the second message to be stored")
    muted = await decide(http, mod_a, "message", second["message"]["id"], reporter, action="mute", reason="spamming")
    assert muted["details"] == {"stream_id": stream}
    refused = await talker.call("send_message", {"stream_id": stream, "text": "can I talk"})
    assert refused["ok"] is False and refused["error"]["code"] == "banned_from_chat"
    assert (await talker.call("send_message", {"stream_id": elsewhere, "text": "hello there"}))["ok"] is True

    # timeout: no chat anywhere for the given minutes.
    timed = await decide(
        http, mod_a, "user", str(troll.id), reporter, action="timeout", reason="cool down", duration_minutes=30
    )
    refused = await talker.call("send_message", {"stream_id": elsewhere, "text": "and now"})
    assert refused["error"]["code"] == "timed_out" and refused["error"]["details"]["scope"] == "platform"
    assert_error(
        await http.post(
            f"{API}/moderation/cases/{(await http.post(f'{API}/reports', json={'target_type': 'user', 'target_id': str(owner.id), 'reason': 'spam'}, headers=reporter.headers)).json()['case_id']}/decision",
            json={"action": "timeout", "reason": "x"},
            headers=mod_a.headers,
        ),
        409,
        "case_not_claimed",
    )

    # Reputation fell with each action: 100 - 10 (remove) - 10 (mute) - 15 (timeout).
    assert (await http.get(f"{API}/moderation/me/reputation", headers=troll.headers)).json() == {"reputation": 65}
    mine = (await http.get(f"{API}/moderation/me/actions", headers=troll.headers)).json()
    assert [a["action"] for a in mine] == ["timeout", "mute", "remove_content"]

    # Appeals: once each; a different moderator reverses; the effect is undone.
    for action, text in ((timed, "it was a joke"), (muted, "I was answering a question"), (removed, "context")):
        r = await http.post(
            f"{API}/moderation/actions/{action['id']}/appeal", json={"text": text}, headers=troll.headers
        )
        assert r.status_code == 201, r.text
        verdict = {"reverse": True, "reason": "too harsh"}
        url = f"{API}/moderation/appeals/{r.json()['id']}/decision"
        assert_error(await http.post(url, json=verdict, headers=mod_a.headers), 403, "same_moderator")
        assert (await http.post(url, json=verdict, headers=mod_b.headers)).json()["status"] == "reversed"
    assert (await talker.call("send_message", {"stream_id": stream, "text": "back again"}))["ok"] is True
    assert await written()
    assert (await http.get(f"{API}/moderation/me/reputation", headers=troll.headers)).json() == {"reputation": 100}

    # ban: the sockets are dropped at once, sign-in is refused but gives an appeal token.
    banned = await decide(http, admin_a, "user", str(troll.id), reporter, action="ban", reason="repeated abuse")
    ended = await talker.wait_for("session_ended")
    assert ended["code"] == "account_banned"
    await eventually(lambda: _true(talker.disconnected.is_set()), what="the socket to close")
    login = await http.post(f"{API}/auth/login", json={"login": troll.username, "password": PASSWORD})
    err = assert_error(login, 403, "account_banned")
    token = err["details"]["appeal_token"]
    appeal_headers = {"Authorization": f"Bearer {token}"}
    assert_error(await http.get(f"{API}/users/me", headers=appeal_headers), 401)  # not an access token
    actions = (await http.get(f"{API}/moderation/me/actions", headers=appeal_headers)).json()
    assert actions[0]["id"] == banned["id"] and actions[0]["appeal_status"] is None
    appeal = await http.post(
        f"{API}/moderation/actions/{banned['id']}/appeal", json={"text": "please"}, headers=appeal_headers
    )
    assert appeal.status_code == 201, appeal.text
    url = f"{API}/moderation/appeals/{appeal.json()['id']}/decision"
    assert_error(await http.post(url, json={"reverse": True, "reason": "ok"}, headers=mod_b.headers), 403)
    assert (
        await http.post(url, json={"reverse": True, "reason": "first offence"}, headers=admin_b.headers)
    ).status_code == 200
    assert (
        await http.post(f"{API}/auth/login", json={"login": troll.username, "password": PASSWORD})
    ).status_code == 200


async def _true(value: bool) -> bool:
    return value


async def test_reputation_decides_chat_privileges(app, live, sockets, make_user):
    server = await live()
    owner, user = await make_user(roles=["creator"]), await make_user()
    stream = await create_stream(server, owner, go_live=True)
    client = sockets()
    await client.connect(server, user.access_token)
    await joined(client, stream)
    link = {"stream_id": stream, "text": "yesssssssssss"}
    assert "held" not in await client.call("send_message", link)  # flooding is only reported at full reputation
    async with app.runtime.db.session() as session:
        await session.execute(update(User).where(User.id == user.id).values(reputation_points=-60))
    held = await client.call("send_message", {**link, "text": "nooooooooooooo"})
    assert held["held"] is True and "low reputation" in held["reason"], held
    assert "held" not in await client.call("send_message", {"stream_id": stream, "text": "nice stream"})
    async with app.runtime.db.session() as session:
        await session.execute(update(User).where(User.id == user.id).values(reputation_points=-85))
    held = await client.call("send_message", {"stream_id": stream, "text": "hello again"})
    assert held["held"] is True and "low reputation" in held["reason"]
    # The owner's own chat is never held for reputation.
    owner_socket = sockets()
    await owner_socket.connect(server, owner.access_token)
    await joined(owner_socket, stream)
    async with app.runtime.db.session() as session:
        await session.execute(update(User).where(User.id == owner.id).values(reputation_points=-90))
    assert "held" not in await owner_socket.call("send_message", {"stream_id": stream, "text": "welcome all"})


async def test_creators_manage_blocked_terms(app, live, sockets, make_user):
    server = await live()
    http = server.http
    owner, viewer = await make_user(roles=["creator"]), await make_user()
    stream = await create_stream(server, owner, go_live=True)
    url = f"{API}/users/me/blocked-terms"
    assert_error(await http.post(url, json={"terms": ["x"]}, headers=viewer.headers), 403)
    assert_error(await http.post(url, json={"terms": ["  "]}, headers=owner.headers), 422, "invalid_term")
    assert_error(await http.post(url, json={"terms": []}, headers=owner.headers), 422)
    r = await http.post(url, json={"terms": ["OtherChannel", "free coins", "otherchannel"]}, headers=owner.headers)
    assert r.status_code == 200 and [t["term"] for t in r.json()["items"]] == ["OtherChannel", "free coins"]
    client = sockets()
    await client.connect(server, viewer.access_token)
    await joined(client, stream)
    blocked = await client.call("send_message", {"stream_id": stream, "text": "go watch 0therChannel"})
    assert blocked["ok"] is False and "blocked_term" in blocked["error"]["message"]
    blocked = await client.call("send_message", {"stream_id": stream, "text": "get FREE   coins here"})
    assert blocked["ok"] is False
    assert (await client.call("send_message", {"stream_id": stream, "text": "free stuff and coins"}))["ok"] is True
    owner_socket = sockets()
    await owner_socket.connect(server, owner.access_token)
    await joined(owner_socket, stream)
    assert (await owner_socket.call("send_message", {"stream_id": stream, "text": "no otherchannel talk"}))[
        "ok"
    ] is True
    assert (await http.delete(f"{url}/OtherChannel", headers=owner.headers)).status_code == 204
    assert [t["term"] for t in (await http.get(url, headers=owner.headers)).json()["items"]] == ["free coins"]
    assert (await client.call("send_message", {"stream_id": stream, "text": "go watch otherchannel"}))["ok"] is True
