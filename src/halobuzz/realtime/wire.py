"""Writing broadcast frames straight to a websocket connection.

For websocket connections served by uvicorn's default websocket implementation, a room message
is framed once (one unmasked text frame; servers never mask) and the same bytes are written to
each member's transport. This skips the per-recipient queue, writer task and ASGI call. A frame
is written directly only while the connection's Engine.IO writer is idle with nothing queued, so
frames never overtake acks or packets already queued for that connection; otherwise the packet
goes through the Engine.IO queue. Uncompressed frames are valid with permessage-deflate too.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import structlog

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
        """Whether a frame may be written directly now without overtaking queued packets."""
        if not self.direct or not sock.upgraded or sock.upgrading or sock.closed:
            return False
        if self.proto.close_sent or self.transport.is_closing():
            return False
        queue = sock.queue
        # Idle writer: it waits in queue.get() (a pending getter) and nothing is queued.
        return not queue._queue and any(not getter.done() for getter in queue._getters)

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
