"""A consumer that stops reading is disconnected; the rest of the room keeps up."""

from __future__ import annotations

import socket

import orjson
from websockets.asyncio.client import connect as ws_connect

from halobuzz.config import ChatSettings, RealtimeSettings
from halobuzz.realtime.gateway import DELIVERIES
from tests.realtime.support import create_stream, joined


async def _stalled_viewer(url: str, stream_id: str):
    """A raw Engine.IO websocket client that joins the stream, then never reads again.

    A tiny receive buffer and a one-message client queue make the server's writes back up fast.
    """
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    sock.connect_ex((host, int(port)))
    ws = await ws_connect(
        f"ws://{host}:{port}/socket.io/?EIO=4&transport=websocket",
        sock=sock,
        max_queue=1,
        compression=None,
        ping_interval=None,
    )
    assert (await ws.recv()).startswith("0{")  # Engine.IO OPEN
    await ws.send("40")  # Socket.IO CONNECT, anonymous
    assert (await ws.recv()).startswith("40{")
    await ws.send("421" + orjson.dumps(["join_stream", {"stream_id": stream_id}]).decode())
    ack = await ws.recv()
    assert ack.startswith("431[") and orjson.loads(ack[3:])[0]["ok"] is True
    return ws


async def test_a_stalled_consumer_is_dropped_and_does_not_slow_the_room(live, sockets, make_user):
    server = await live(
        realtime=RealtimeSettings(
            max_queue_per_connection=20,
            max_buffer_bytes_per_connection=64 * 1024,
            socket_send_buffer_bytes=16 * 1024,
            count_interval_seconds=0.1,
        ),
        chat=ChatSettings(rate_limit_privileged_messages=100_000),
    )
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner, go_live=True)
    talker, fast = sockets(), sockets()
    await talker.connect(server, owner.access_token)
    await fast.connect(server)
    await joined(talker, stream_id)
    await joined(fast, stream_id)
    stalled = await _stalled_viewer(server.url, stream_id)
    try:
        await talker.wait_for("viewer_count_changed", lambda d: d["viewer_count"] == 3)
        direct_before = DELIVERIES.labels(path="direct")._value.get()
        filler = "x" * 480
        sent = 0
        # Fill the stalled connection's socket buffers, then its queue: send in bursts (acks not
        # awaited), letting the healthy client catch up after each burst.
        while sent < 20_000 and not any(d["viewer_count"] == 2 for d in talker.of("viewer_count_changed")):
            for _ in range(200):
                sent += 1
                await talker.sio.emit("send_message", {"stream_id": stream_id, "text": f"{sent} {filler}"})
            await fast.wait_for("new_message", lambda m, n=sent: m["seq"] == n)
        await talker.wait_for("viewer_count_changed", lambda d: d["viewer_count"] == 2)
        # Everyone else got every message, in order.
        await fast.wait_for("new_message", lambda m: m["seq"] == sent)
        assert [m["seq"] for m in fast.of("new_message")] == list(range(1, sent + 1))
        assert len(server.gateway.conns) == 2
        # The room's frames went out through the direct write path.
        assert DELIVERIES.labels(path="direct")._value.get() - direct_before >= sent
    finally:
        stalled.transport.abort()


async def test_a_long_poll_client_that_stops_polling_is_dropped(live, sockets, make_user):
    server = await live(realtime=RealtimeSettings(max_queue_per_connection=20, count_interval_seconds=0.1))
    owner = await make_user(roles=["creator"])
    stream_id = await create_stream(server, owner, go_live=True)
    talker = sockets()
    await talker.connect(server, owner.access_token)
    await joined(talker, stream_id)
    http = server.http
    opened = (await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})).text
    sid = orjson.loads(opened[1:])["sid"]
    params = {"EIO": "4", "transport": "polling", "sid": sid}
    assert (await http.post("/socket.io/", params=params, content="40")).status_code == 200
    assert (await http.get("/socket.io/", params=params)).text.startswith("40{")
    join = "421" + orjson.dumps(["join_stream", {"stream_id": stream_id}]).decode()
    assert (await http.post("/socket.io/", params=params, content=join)).status_code == 200
    packets = (await http.get("/socket.io/", params=params)).text.split("\x1e")
    ack = next(p for p in packets if p.startswith("431"))
    assert orjson.loads(ack[3:])[0]["ok"] is True
    await talker.wait_for("viewer_count_changed", lambda d: d["viewer_count"] == 2)
    # It never polls again: its queue fills and it is dropped.
    for i in range(25):
        assert (await talker.call("send_message", {"stream_id": stream_id, "text": f"m{i}"}))["ok"]
    await talker.wait_for("viewer_count_changed", lambda d: d["viewer_count"] == 1)
    assert (await http.get("/socket.io/", params=params)).status_code == 400
