"""Engine.IO heartbeats: answered pings keep a connection open, a silent client is dropped.

Upgraded connections run the lean websocket loop (``realtime.engine.Socket``): PINGs are written
straight to the transport while the writer is idle and PONGs are recorded inline, so these tests
also pin that the lean path still speaks the protocol to real clients.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from halobuzz.config import RealtimeSettings
from halobuzz.realtime.engine import Socket
from tests.realtime.support import eventually, new_id


async def _frames_until_closed(ws, allowed: tuple[str, ...]) -> list[str]:
    """Every frame the server sends until it closes the websocket (each one of ``allowed``)."""
    frames = []
    try:
        while True:
            frame = await asyncio.wait_for(ws.recv(), 10)
            assert frame in allowed, frame
            frames.append(frame)
    except ConnectionClosed:
        return frames


async def test_heartbeats_keep_answering_clients_and_drop_silent_ones(live):
    server = await live(realtime=RealtimeSettings(ping_interval_seconds=0.2, ping_timeout_seconds=0.5))
    pinger = server.gateway.pinger
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with ws_connect(url, compression=None, ping_interval=None) as ws:
        assert (await ws.recv()).startswith("0{")  # Engine.IO OPEN
        await ws.send("40")  # Socket.IO CONNECT, anonymous
        assert (await ws.recv()).startswith("40{")
        (conn,) = server.gateway.conns.values()
        assert isinstance(conn.sock, Socket) and conn.sock.streaming
        direct = pinger.sent_direct
        for _ in range(5):
            assert await asyncio.wait_for(ws.recv(), 10) == "2"
            await ws.send("3")
        # An idle connection's pings skip its writer (at most the first could meet a busy one).
        assert pinger.sent_direct - direct >= 4
        assert conn.sid in server.gateway.conns
        # Stop answering: the server closes the connection after the ping timeout.
        assert await asyncio.wait_for(ws.recv(), 10) == "2"
        await _frames_until_closed(ws, ("2", "1"))  # pings, then an Engine.IO CLOSE
    await eventually(
        lambda: _true(conn.sid not in server.gateway.conns), timeout=10, what="the silent connection to be dropped"
    )
    assert conn.sock.closed and conn.sock.sid not in server.gateway.sio.eio.sockets


async def test_a_socketio_client_upgraded_from_polling_keeps_talking_between_direct_pings(live, sockets):
    server = await live(realtime=RealtimeSettings(ping_interval_seconds=1, ping_timeout_seconds=1))
    pinger = server.gateway.pinger
    client = sockets()
    await client.connect(server, transports=("polling", "websocket"))
    (conn,) = server.gateway.conns.values()
    await eventually(lambda: _true(conn.sock.streaming), what="the websocket upgrade")
    assert isinstance(conn.sock, Socket) and conn.sock.upgraded
    direct = pinger.sent_direct
    # python-socketio's client answers the pings itself, after the upgrade over the websocket.
    await eventually(lambda: _true(pinger.sent_direct - direct >= 3), what="three pings written directly")
    assert client.sio.connected and conn.sid in server.gateway.conns
    # Acks still flow through the writer the pings bypassed.
    assert await client.call("leave_stream", {"stream_id": new_id()}) == {"ok": True}
    await client.close()
    await eventually(lambda: _true(not server.gateway.conns), what="the disconnect")


async def test_closing_an_engineio_socket_closes_its_websocket(live):
    server = await live()
    url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with ws_connect(url, compression=None, ping_interval=None) as ws:
        assert (await ws.recv()).startswith("0{")
        await ws.send("40")
        assert (await ws.recv()).startswith("40{")
        (conn,) = server.gateway.conns.values()
        # As the gateway does when a sign-in ends: Socket.IO DISCONNECT, then the Engine.IO close.
        await server.gateway.sio.disconnect(conn.sid)
        await asyncio.wait_for(conn.sock.close(wait=True), 10)
        # Then the websocket closes after what was queued, without waiting for the client.
        assert await _frames_until_closed(ws, ("41", "1")) == ["41", "1"]
    assert not server.gateway.conns


async def _true(value: bool) -> bool:
    return value
