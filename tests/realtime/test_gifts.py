"""Gifts over the socket (`send_gift`) and over HTTP reach the room as `gift_received`, once."""

from __future__ import annotations

import uuid

from tests.economy.conftest import grant_coins
from tests.realtime.support import create_stream, joined


async def _gift(server, admin, coin_price=10):
    r = await server.http.post(
        "/api/v1/admin/gifts",
        json={"name": f"g-{uuid.uuid4().hex[:6]}", "coin_price": coin_price},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_send_gift_over_the_socket_and_http(live, sockets, make_user):
    server = await live()
    owner, fan, admin = await make_user(roles=["creator"]), await make_user(), await make_user(roles=["admin"])
    stream_id = await create_stream(server, owner, go_live=True)
    gift = await _gift(server, admin, coin_price=10)
    await grant_coins(server.app, fan.id, 100)
    sender, watcher, anonymous = sockets(), sockets(), sockets()
    await sender.connect(server, fan.access_token)
    await watcher.connect(server, owner.access_token)
    await anonymous.connect(server)
    for client in (sender, watcher, anonymous):
        await joined(client, stream_id)

    payload = {"stream_id": stream_id, "gift_id": gift["id"], "quantity": 3, "idempotency_key": "k-1"}
    ack = await sender.call("send_gift", payload)
    assert ack["ok"] is True and ack["coins_spent"] == 30 and ack["balance"] == 70, ack
    event = await watcher.wait_for("gift_received")
    assert event["id"] == ack["id"] and event["quantity"] == 3 and event["coins"] == 30
    assert event["sender"] == {"id": str(fan.id), "username": fan.username}
    assert event["gift"]["id"] == gift["id"]

    # A retry with the same key answers the same and announces nothing new.
    again = await sender.call("send_gift", payload)
    assert again == ack
    reused = await sender.call("send_gift", {**payload, "quantity": 1})
    assert reused["ok"] is False and reused["error"]["code"] == "idempotency_key_reused"
    broke = await sender.call("send_gift", {**payload, "quantity": 100, "idempotency_key": "k-2"})
    assert broke["ok"] is False and broke["error"]["code"] == "insufficient_funds"
    refused = await anonymous.call("send_gift", {**payload, "idempotency_key": "k-3"})
    assert refused["ok"] is False and refused["error"]["code"] == "auth_required"
    bad = await sender.call("send_gift", {"stream_id": stream_id, "gift_id": "nope", "idempotency_key": "k-4"})
    assert bad["ok"] is False

    # The HTTP route announces too.
    r = await server.http.post(
        f"/api/v1/streams/{stream_id}/gifts",
        json={"gift_id": gift["id"], "quantity": 1},
        headers={**fan.headers, "Idempotency-Key": "http-1"},
    )
    assert r.status_code in (200, 201), r.text
    await watcher.wait_for("gift_received", lambda e: e["id"] == r.json()["id"])
    assert len(watcher.of("gift_received")) == 2
    wallet = (await server.http.get("/api/v1/wallet", headers=fan.headers)).json()
    assert wallet["balance"] == 60
