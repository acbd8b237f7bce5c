"""Engine.IO sockets with a lean websocket loop, and the servers that use them.

python-engineio's websocket loop costs an idle connection, per heartbeat: a task and a timed wait
(``asyncio.wait_for``) for every packet it receives, and a writer wake-up with another timed wait
for every PING it sends. With 10,000 idle connections that is 400 heartbeats a second, and that
bookkeeping was most of the server's keep-alive CPU. ``Socket`` keeps engineio's protocol and
state (``last_ping``, ``queue``, ``close``, the upgrade from long-polling) and only replaces the
websocket loop once the connection is upgraded:

* receiving awaits the websocket directly (no task, no timer per packet), and a PONG, almost all
  an idle client ever sends, is recorded inline without decoding a packet;
* the shared ``Pinger`` writes a PING frame straight to the transport while the writer is idle
  with nothing queued (the same rule as room broadcasts, ``Link.writable``), so the writer task
  sleeps through heartbeats; otherwise the PING is queued as before;
* the writer waits on the queue without a timeout.

engineio's timeouts in its loop were its way of noticing a dead peer (no packet received, or
nothing to send, for ping interval + ping timeout). Here the pinger's sweep does that: a
connection whose PING goes unanswered for the ping timeout is closed (``Pinger.sweep``), and
closing an upgraded socket stops its writer, which closes the websocket.

The wire protocol is unchanged: pings every ``ping_interval`` seconds, ``pingTimeout`` and
``pingInterval`` announced in the OPEN packet as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

import engineio
import socketio
from engineio import async_socket, exceptions
from engineio import packet as eio_packet

from halobuzz.realtime.wire import Link, Pinger

_PONG = "3"  # an Engine.IO PONG without data, as text


class Socket(async_socket.AsyncSocket):  # type: ignore[misc]
    """An Engine.IO socket whose websocket loop does as little as possible per heartbeat."""

    # engineio's state (set in its __init__), typed here for our code.
    server: Any
    sid: str
    queue: asyncio.Queue[Any]
    last_ping: float | None
    connected: bool
    upgrading: bool
    upgraded: bool
    closing: bool
    closed: bool
    # Set by the gateway while the connection's websocket can be written directly.
    link: Link | None = None
    # Whether the lean websocket loop (and its writer) runs for this socket.
    streaming = False
    # True while that writer waits for the queue (nothing it could be overtaken by in flight).
    writer_idle = False

    def schedule_ping(self) -> None:
        # As engineio: only once the previous ping has been answered; the shared pinger sends it.
        if self.last_ping:
            self.last_ping = None
            self.server.pinger.schedule(self)

    def write_direct(self, frame: bytes) -> bool:
        """Write a ready websocket frame now if nothing queued could be overtaken; else False."""
        link = self.link
        if link is None or not self.streaming or not link.writable(self):
            return False
        link.transport.write(frame)
        return True

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        """engineio's close; on a websocket, the writer then stops after what is queued, closing it.

        (engineio's writer would only notice after ping interval + ping timeout without packets.)
        """
        if self.closed or self.closing:
            return
        self.closing = True
        await self.server._trigger_event(
            "disconnect", self.sid, reason or self.server.reason.SERVER_DISCONNECT, run_async=False
        )
        if not abort:
            await self.send(eio_packet.Packet(eio_packet.CLOSE))
        self.closed = True
        if self.streaming:
            self.queue.put_nowait(None)
        if wait:
            await self.queue.join()

    async def _websocket_handler(self, ws: Any) -> None:
        """Engine.IO over a websocket (new or upgraded from long-polling)."""
        server = self.server
        max_size = server.max_http_buffer_size
        if self.connected:
            # An upgrade from long-polling: the probe, then UPGRADE (as engineio does it).
            self.upgrading = True  # hold packet sends during the upgrade
            try:
                data = await ws.wait()
            except OSError:
                self.upgrading = False
                return
            probe = eio_packet.Packet(encoded_packet=data)
            if probe.packet_type != eio_packet.PING or probe.data != "probe":
                server.logger.info("%s: Failed websocket upgrade, no PING packet", self.sid)
                self.upgrading = False
                return
            await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
            await self.queue.put(eio_packet.Packet(eio_packet.NOOP))  # end the pending poll
            try:
                data = await ws.wait()
            except OSError:
                self.upgrading = False
                return
            if eio_packet.Packet(encoded_packet=data).packet_type != eio_packet.UPGRADE:
                server.logger.info("%s: Failed websocket upgrade, expected UPGRADE packet", self.sid)
                self.upgrading = False
                return
            self.upgraded = True
            self.upgrading = False
        else:
            self.connected = True
            self.upgraded = True

        self.streaming = True
        writer = asyncio.ensure_future(self._write(ws))
        try:
            while True:
                try:
                    data = await ws.wait()
                except (Exception, asyncio.CancelledError):
                    # OSError once the websocket is gone; a cancelled handler ends the same way
                    # (engineio does the same, and the cleanup below must still run).
                    break
                if data is None or len(data) > max_size:
                    break
                if data == _PONG:
                    self.schedule_ping()
                    continue
                try:
                    await self.receive(eio_packet.Packet(encoded_packet=data))
                except exceptions.UnknownPacketError:
                    pass
                except exceptions.SocketIsClosedError:
                    break
                except Exception:
                    server.logger.exception("Unknown receive error")
        finally:
            self.streaming = False
            self.queue.put_nowait(None)  # unlock the writer so it can exit
            await writer
            await self.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)

    async def _write(self, ws: Any) -> None:
        """Send what is queued, in order, until ``None`` (closed) or the websocket fails."""
        queue = self.queue
        while True:
            self.writer_idle = True
            try:
                pkt = await queue.get()
            finally:
                self.writer_idle = False
            queue.task_done()
            if pkt is None:
                break
            try:
                await ws.send(pkt.encode())
            except Exception:
                break
        await ws.close()


class EngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """engineio's server with ``Socket``s and one ``Pinger`` for all of them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pinger = Pinger(self.ping_interval, self.ping_timeout)

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            # engineio builds every socket as its own AsyncSocket (``_handle_connect``) and fires
            # ``connect`` right after, before any transport work: the one place to make it ours.
            sock = self.sockets.get(args[0])
            if sock is not None and type(sock) is async_socket.AsyncSocket:
                sock.__class__ = Socket
        return await super()._trigger_event(event, *args, **kwargs)


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server on ``EngineServer``."""

    def _engineio_server_class(self) -> type[EngineServer]:
        return EngineServer
