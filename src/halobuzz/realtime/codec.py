"""Socket.IO packet encoding with orjson, and the pre-encoded frames of the broadcast path."""

from __future__ import annotations

from typing import Any

import orjson
from engineio import packet as eio_packet
from socketio import packet as sio_packet

# UTC datetimes end in "Z", as in the HTTP API's JSON.
_OPTIONS = orjson.OPT_UTC_Z


def _default(obj: Any) -> str:
    # Driver-specific UUIDs (asyncpg's) and other string-like values.
    return str(obj)


class _OrjsonJSON:
    """The ``json`` interface python-socketio packets use, backed by orjson (UUIDs, datetimes)."""

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        return orjson.dumps(obj, default=_default, option=_OPTIONS).decode()

    @staticmethod
    def loads(data: str | bytes, **_kwargs: Any) -> Any:
        return orjson.loads(data)


class Packet(sio_packet.Packet):  # type: ignore[misc]
    """Socket.IO packets encoded by orjson (set per server, not globally)."""

    json = _OrjsonJSON


def dumps(obj: Any) -> str:
    return orjson.dumps(obj, default=_default, option=_OPTIONS).decode()


def event_frame(event: str, body: str) -> eio_packet.Packet:
    """An Engine.IO MESSAGE carrying the Socket.IO EVENT ``[event, body]`` (namespace ``/``),
    encoded once: the same object is queued to every recipient."""
    pkt = eio_packet.Packet(eio_packet.MESSAGE, data='2["' + event + '",' + body + "]")
    pkt.encode()  # fills the packet's encode cache
    return pkt


def event_text(pkt: eio_packet.Packet) -> str:
    """The text of a frame made by ``event_frame`` as it goes on the wire."""
    text: str = pkt.encode()
    return text
