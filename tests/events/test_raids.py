"""Raids: the raiding stream's viewers get `raid` over a real socket, after commit; rules are enforced."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from halobuzz.core.events import OutboxEvent
from tests.realtime.support import create_stream, joined, live, sockets  # noqa: F401 - fixtures


async def test_raid_reaches_the_room_and_ends_the_stream(live: Any, sockets: Any, make_user: Any) -> None:  # noqa: F811
    server = await live()
    raider, host, viewer = await make_user(roles=["creator"]), await make_user(roles=["creator"]), await make_user()
    source = await create_stream(server, raider, go_live=True, title="Raider")
    target = await create_stream(server, host, go_live=True, title="Target show")
    offline = await create_stream(server, host, title="Later")
    watcher = sockets()
    await watcher.connect(server, viewer.access_token)
    await joined(watcher, source)

    url = f"/api/v1/streams/{source}/raid"
    r = await server.http.post(url, json={"target_stream_id": source}, headers=raider.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "raid_self"
    r = await server.http.post(url, json={"target_stream_id": offline}, headers=raider.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "target_not_live"
    r = await server.http.post(url, json={"target_stream_id": str(uuid.uuid4())}, headers=raider.headers)
    assert r.status_code == 404
    r = await server.http.post(url, json={"target_stream_id": target}, headers=viewer.headers)
    assert r.status_code in (403, 404)
    assert watcher.of("raid") == []

    r = await server.http.post(url, json={"target_stream_id": target}, headers=raider.headers)
    assert r.status_code == 200, r.text
    event = await watcher.wait_for("raid")
    assert event == {
        "stream_id": source,
        "target_stream_id": target,
        "target": {"id": target, "title": "Target show", "owner": {"id": str(host.id), "username": host.username}},
    }
    await watcher.wait_for("stream_ended")
    assert (await server.http.get(f"/api/v1/streams/{source}")).json()["status"] == "offline"
    r = await server.http.post(url, json={"target_stream_id": target}, headers=raider.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_live"

    async with server.app.runtime.db.session(write=False) as s:
        types = list((await s.execute(select(OutboxEvent.type).order_by(OutboxEvent.occurred_at))).scalars())
    assert types.count("raid.incoming") == 1
    assert types.count("stream.live") == 2 and types.count("stream.offline") == 1
