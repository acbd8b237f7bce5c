"""Engine.IO heartbeats: answered pings keep a connection open, a silent client is dropped."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from halobuzz.config import RealtimeSettings


async def test_heartbeats_keep_answering_clients_and_drop_silent_ones(live):
    server = await live(realtime=RealtimeSettings(ping_interval_seconds=0.2, ping_timeout_seconds=0.5))
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with ws_connect(url, compression=None, ping_interval=None) as ws:
        assert (await ws.recv()).startswith("0{")  # Engine.IO OPEN
        await ws.send("40")  # Socket.IO CONNECT, anonymous
        assert (await ws.recv()).startswith("40{")
        (conn,) = server.gateway.conns.values()
        assert conn.sock.schedule_ping.func == server.gateway.pinger._schedule
        # The first ping is engineio's own; every later one comes from the shared pinger.
        for _ in range(5):
            assert await asyncio.wait_for(ws.recv(), 10) == "2"
            await ws.send("3")
        assert conn.sid in server.gateway.conns
        # Stop answering: the server closes the connection after the ping timeout.
        assert await asyncio.wait_for(ws.recv(), 10) == "2"
        closed = False
        try:
            while True:
                frame = await asyncio.wait_for(ws.recv(), 10)
                assert frame in ("2", "1")  # pings, then an Engine.IO CLOSE
        except ConnectionClosed:
            closed = True
        assert closed
    deadline = asyncio.get_running_loop().time() + 10
    while conn.sid in server.gateway.conns:
        assert asyncio.get_running_loop().time() < deadline, "the silent connection was not dropped"
        await asyncio.sleep(0.02)
