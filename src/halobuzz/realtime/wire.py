"""Writing broadcast frames straight to a websocket connection.

For websocket connections served by uvicorn's default websocket implementation, a room message
is framed once (one unmasked text frame; servers never mask) and the same bytes are written to
each member's transport. This skips the per-recipient queue, writer task and ASGI call. A frame
is written directly only while the connection's Engine.IO writer is idle with nothing queued, so
frames never overtake acks or packets already queued for that connection; otherwise the packet
goes through the Engine.IO queue. Uncompressed frames are valid with permessage-deflate too.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections import deque
from typing import Any

import structlog
from engineio import packet as eio_packet

log = structlog.get_logger(__name__)

_DIRECT_PROTOCOLS = frozenset({"WebSocketsSansIOProtocol"})


def websocket_frame(text: str) -> bytes:
    """One final, unmasked websocket text frame carrying ``text``."""
    data = text.encode()
    size = len(data)
    if size < 126:
        return bytes((0x81, size)) + data
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + data
    return struct.pack("!BBQ", 0x81, 127, size) + data


class Link:
    """A connection's websocket, as far as the direct path needs it."""

    __slots__ = ("direct", "proto", "transport")

    def __init__(self, proto: Any) -> None:
        self.proto = proto
        self.transport: Any = proto.transport
        self.direct = type(proto).__name__ in _DIRECT_PROTOCOLS and hasattr(proto, "close_sent")

    def writable(self, sock: Any) -> bool:
        """Whether a frame may be written directly now without overtaking queued packets: the
        socket's writer (``engine.Socket._write``) waits for its queue and nothing is queued (a
        packet just queued stays in the queue until the writer has resumed and taken it)."""
        if not self.direct or not getattr(sock, "writer_idle", False) or sock.queue._queue or sock.closed:
            return False
        return not (self.proto.close_sent or self.transport.is_closing())

    def abort(self) -> None:
        self.transport.abort()


def limit_send_buffer(proto: Any, size: int) -> None:
    """Cap the kernel send buffer of the connection (bounds what a stalled client can pin)."""
    sock = proto.transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    except OSError as exc:
        log.warning("realtime_sndbuf_failed", error=str(exc))


_PING_PACKET = eio_packet.Packet(eio_packet.PING)
_PING_FRAME = websocket_frame(_PING_PACKET.encode())


class Pinger:
    """Engine.IO heartbeats for every connection of the instance from one loop.

    python-engineio starts a task per connection for every heartbeat (it sleeps the ping
    interval, then queues a PING that the connection's writer task picks up); with 10,000 idle
    connections that is 400 task starts, timers and writer wake-ups a second. Here a connection
    due for a ping waits in one queue (the interval is the same for all, so the queue stays in
    order), and one loop sends the PINGs of every connection that is due: written straight to
    the websocket when its writer is idle (``engine.Socket.write_direct``), queued otherwise.
    ``last_ping`` keeps engineio's meaning, so its own checks (a client that stops answering is
    closed after the ping timeout) are unchanged.
    """

    def __init__(self, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = timeout
        # A ping goes out at most a tick late; the client allows interval + timeout between
        # pings before it gives up, so the tick stays a small part of the interval.
        self.tick = min(0.5, interval / 4)
        self._due: deque[tuple[float, Any]] = deque()
        # Pings sent since start, by path (written directly or through the queue).
        self.sent_direct = 0
        self.sent_queued = 0

    def schedule(self, sock: Any) -> None:
        """Ping ``sock`` one interval from now (called when its previous ping was answered)."""
        self._due.append((time.monotonic() + self.interval, sock))

    def pending(self) -> int:
        return len(self._due)

    async def run(self, sockets: dict[str, Any]) -> None:
        """Ping whoever is due every tick; sweep ``sockets`` (engineio's) once per timeout.

        The sweep replaces engineio's client monitor (``monitor_clients=False``), which visits one
        connection at a time with a timed wait between each: 500 timers a second for 10,000
        connections. It drops closed connections and closes those whose ping went unanswered.
        """
        next_sweep = time.monotonic() + self.timeout
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            self.ping_due(now)
            if now >= next_sweep:
                next_sweep = now + self.timeout
                await self.sweep(sockets)

    async def sweep(self, sockets: dict[str, Any]) -> None:
        now = time.time()
        for sid, sock in list(sockets.items()):
            if sock.closed:
                sockets.pop(sid, None)
            elif not sock.closing and sock.last_ping and now - sock.last_ping > self.timeout:
                try:
                    await sock.check_ping_timeout()  # closes it
                except Exception as exc:
                    log.warning("realtime_ping_timeout_close_failed", error=str(exc))

    def ping_due(self, now: float) -> None:
        due = self._due
        while due and due[0][0] <= now:
            _, sock = due.popleft()
            if sock.closing or sock.closed:
                continue
            sock.last_ping = time.time()
            if sock.write_direct(_PING_FRAME):
                self.sent_direct += 1
            else:
                sock.queue.put_nowait(_PING_PACKET)
                self.sent_queued += 1
