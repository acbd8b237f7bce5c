"""Per-broadcast numbers for the stream's owner: peak viewers, chat messages, gifts."""

from __future__ import annotations

import uuid

from halobuzz.streams import service as streams_service
from tests.conftest import assert_error
from tests.economy.conftest import grant_coins
from tests.realtime.support import create_stream, eventually, joined


async def test_stream_stats_per_broadcast(live, sockets, make_user):
    server = await live()
    http = server.http
    owner, admin = await make_user(roles=["creator"]), await make_user(roles=["admin"])
    fans = [await make_user(), await make_user()]
    stranger = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner, go_live=True)
    gift = (
        await http.post("/api/v1/admin/gifts", json={"name": "stat-rose", "coin_price": 7}, headers=admin.headers)
    ).json()
    for fan in fans:
        await grant_coins(server.app, fan.id, 100)

    # First broadcast: three messages from two fans (one deleted later), gifts from one fan.
    clients = [sockets(), sockets()]
    for client, fan in zip(clients, fans, strict=True):
        await client.connect(server, fan.access_token)
        await joined(client, stream_id)
    sent = []
    for client, text in ((clients[0], "hello"), (clients[1], "namaste"), (clients[0], "again")):
        ack = await client.call("send_message", {"stream_id": stream_id, "text": text})
        assert ack["ok"] is True, ack
        sent.append(ack["message"]["id"])
    for key, quantity in (("g1", 2), ("g2", 1)):
        r = await http.post(
            f"/api/v1/streams/{stream_id}/gifts",
            json={"gift_id": gift["id"], "quantity": quantity},
            headers={**fans[0].headers, "Idempotency-Key": key},
        )
        assert r.status_code == 200, r.text
    async with server.app.runtime.db.session() as session:
        await streams_service.set_viewer_count(session=session, stream_id=uuid.UUID(stream_id), viewer_count=42)

    async def history_written() -> bool:
        r = await http.get(f"/api/v1/streams/{stream_id}/chat")
        return len(r.json()["items"]) == 3

    await eventually(history_written, what="chat written")
    deleted = await http.delete(f"/api/v1/streams/{stream_id}/chat/messages/{sent[0]}", headers=owner.headers)
    assert deleted.status_code == 204
    assert (await http.post(f"/api/v1/streams/{stream_id}/end", headers=owner.headers)).status_code == 200

    # Second broadcast: one gift from the other fan, no chat.
    assert (await http.post(f"/api/v1/streams/{stream_id}/start", headers=owner.headers)).status_code == 200
    r = await http.post(
        f"/api/v1/streams/{stream_id}/gifts",
        json={"gift_id": gift["id"], "quantity": 3},
        headers={**fans[1].headers, "Idempotency-Key": "g3"},
    )
    assert r.status_code == 200, r.text

    r = await http.get(f"/api/v1/streams/{stream_id}/stats", headers=owner.headers)
    assert r.status_code == 200, r.text
    second, first = r.json()["items"]
    assert r.json()["next_cursor"] is None
    assert first["peak_viewers"] == 42 and first["ended_at"] is not None
    assert (first["chat_messages"], first["chatters"]) == (3, 2)
    assert (first["gifts"], first["gift_coins"], first["gifters"]) == (3, 21, 1)
    assert second["ended_at"] is None and second["duration_seconds"] is None
    assert (second["chat_messages"], second["chatters"]) == (0, 0)
    assert (second["gifts"], second["gift_coins"], second["gifters"]) == (3, 21, 1)

    # Paging, admins, and who may not look.
    page = (await http.get(f"/api/v1/streams/{stream_id}/stats", params={"limit": 1}, headers=admin.headers)).json()
    assert [i["broadcast_id"] for i in page["items"]] == [second["broadcast_id"]]
    rest = await http.get(
        f"/api/v1/streams/{stream_id}/stats", params={"limit": 1, "cursor": page["next_cursor"]}, headers=admin.headers
    )
    assert [i["broadcast_id"] for i in rest.json()["items"]] == [first["broadcast_id"]]
    assert_error(
        await http.get(f"/api/v1/streams/{stream_id}/stats", headers=stranger.headers), 403, "not_stream_owner"
    )
    assert_error(await http.get(f"/api/v1/streams/{stream_id}/stats"), 401)
    assert_error(
        await http.get(f"/api/v1/streams/{uuid.uuid4()}/stats", headers=owner.headers), 404, "stream_not_found"
    )
    assert_error(
        await http.get(f"/api/v1/streams/{stream_id}/stats", params={"cursor": "bad"}, headers=owner.headers),
        422,
        "invalid_cursor",
    )
