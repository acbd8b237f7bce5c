"""Sign-in revocations reach open sockets at once: bans, suspensions and logouts disconnect them,
on every instance."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import socketio

from halobuzz.core.clock import utcnow
from tests.conftest import TEST_REDIS_URL
from tests.realtime.support import Live, SocketClient, create_stream, eventually, joined

if TYPE_CHECKING:
    from tests.conftest import TestUser

BAN = {"reason": "spam in every chat"}


async def _ended(client: SocketClient, code: str) -> None:
    """The socket was told why (``session_ended``) and disconnected."""
    ended = await client.wait_for("session_ended")
    assert ended["code"] == code and ended["message"], ended
    await eventually(lambda: _true(client.disconnected.is_set()), what="the socket to be disconnected")
    assert not client.sio.connected


async def _true(value: bool) -> bool:
    return value


async def _login(live: Live, user: TestUser) -> str:
    response = await live.http.post(
        "/api/v1/auth/login",
        json={"login": user.username, "password": user.password},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_a_ban_disconnects_every_socket_of_the_user_at_once(live, sockets, make_user):
    server = await live()
    admin, owner, target = await make_user(roles=["admin"]), await make_user(roles=["creator"]), await make_user()
    other = await make_user()
    stream_id = await create_stream(server, owner, go_live=True)
    phone, laptop, bystander = sockets(), sockets(), sockets()
    await phone.connect(server, target.access_token)
    await laptop.connect(server, await _login(server, target))
    await bystander.connect(server, other.access_token)
    await joined(phone, stream_id)
    await joined(bystander, stream_id)

    response = await server.http.post(f"/api/v1/admin/users/{target.id}/ban", json=BAN, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "banned"

    for client in (phone, laptop):
        await _ended(client, "account_banned")
    gateway = server.gateway
    await eventually(lambda: _true(not any(c.user_id == target.id for c in gateway.conns.values())), what="cleanup")
    # Others are untouched: the bystander stays connected and still chats.
    assert bystander.sio.connected and not bystander.of("session_ended")
    sent = await bystander.call("send_message", {"stream_id": stream_id, "text": "still here"})
    assert sent["ok"] is True
    # The banned user cannot come back.
    again = sockets()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await again.connect(server, target.access_token)
    assert again.connect_error["data"]["code"] == "session_revoked"  # the ban ended every sign-in


async def test_a_suspension_disconnects_the_user(live, sockets, make_user):
    server = await live()
    moderator, target = await make_user(roles=["moderator"]), await make_user()
    client = sockets()
    await client.connect(server, target.access_token)
    until = (utcnow() + timedelta(days=1)).isoformat()
    response = await server.http.post(
        f"/api/v1/admin/users/{target.id}/suspend",
        json={"until": until, "reason": "cool down"},
        headers=moderator.headers,
    )
    assert response.status_code == 200, response.text
    await _ended(client, "account_suspended")


async def test_logging_out_one_device_drops_only_its_sockets(live, sockets, make_user):
    server = await live()
    owner, user = await make_user(roles=["creator"]), await make_user()
    stream_id = await create_stream(server, owner, go_live=True)
    second_token = await _login(server, user)
    phone_tab1, phone_tab2, laptop = sockets(), sockets(), sockets()
    await phone_tab1.connect(server, user.access_token)
    await phone_tab2.connect(server, user.access_token, transports=("polling",))
    await laptop.connect(server, second_token)
    for client in (phone_tab1, laptop):
        await joined(client, stream_id)

    response = await server.http.post("/api/v1/auth/logout", headers=user.headers)
    assert response.status_code == 204, response.text

    for client in (phone_tab1, phone_tab2):
        await _ended(client, "session_revoked")
    # The other device keeps its socket, and it still works.
    assert laptop.sio.connected and not laptop.of("session_ended")
    sent = await laptop.call("send_message", {"stream_id": stream_id, "text": "from the laptop"})
    assert sent["ok"] is True
    await laptop.wait_for("new_message", lambda m: m["text"] == "from the laptop")
    assert laptop.sio.connected


async def test_a_ban_reaches_sockets_on_every_instance(live, sockets, make_user):
    a, b = await live(), await live()
    admin, target = await make_user(roles=["admin"]), await make_user()
    # With Redis the socket is on B and the ban goes through A: the revocation crosses Redis and
    # B re-checks its sockets. Without Redis there is one instance per deployment (instances share
    # nothing), so the socket is on the instance that bans.
    where = b if TEST_REDIS_URL else a
    client, bystander = sockets(), sockets()
    await client.connect(where, target.access_token)
    await bystander.connect(where, admin.access_token)
    response = await a.http.post(f"/api/v1/admin/users/{target.id}/ban", json=BAN, headers=admin.headers)
    assert response.status_code == 200, response.text
    await _ended(client, "account_banned")
    assert bystander.sio.connected and not bystander.of("session_ended")
