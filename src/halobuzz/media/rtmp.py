"""Reading an RTMP publisher's opening: the handshake, chunk stream and AMF0 commands up to
``publish``, so the ingest can check the stream key before the session reaches ffmpeg.

Only the client-to-server direction is parsed, and only until ``publish``; the bytes are relayed
to an ffmpeg RTMP listener unchanged (message by message, the ``publish`` held back until the key
is accepted).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

HANDSHAKE = 1 + 1536  # C0 + C1
C2 = 1536
MSG_SET_CHUNK_SIZE = 1
MSG_AMF3_COMMAND = 17
MSG_AMF0_COMMAND = 20


class ProtocolError(ValueError):
    """The bytes are not an RTMP publisher's."""


def amf0_values(data: bytes) -> list[Any]:
    """Decode a sequence of AMF0 values (numbers, booleans, strings, objects, arrays, null)."""
    out: list[Any] = []
    pos = 0
    while pos < len(data):
        value, pos = _amf0(data, pos)
        out.append(value)
    return out


def _amf0(data: bytes, pos: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise ProtocolError("truncated AMF0")
    marker = data[pos]
    pos += 1
    if marker == 0x00:
        return struct.unpack(">d", data[pos : pos + 8])[0], pos + 8
    if marker == 0x01:
        return bool(data[pos]), pos + 1
    if marker == 0x02:
        n = struct.unpack(">H", data[pos : pos + 2])[0]
        return data[pos + 2 : pos + 2 + n].decode(errors="replace"), pos + 2 + n
    if marker == 0x0C:
        n = struct.unpack(">I", data[pos : pos + 4])[0]
        return data[pos + 4 : pos + 4 + n].decode(errors="replace"), pos + 4 + n
    if marker in (0x05, 0x06):
        return None, pos
    if marker in (0x03, 0x08):
        if marker == 0x08:
            pos += 4
        obj: dict[str, Any] = {}
        while True:
            if pos + 3 > len(data):
                raise ProtocolError("truncated AMF0 object")
            n = struct.unpack(">H", data[pos : pos + 2])[0]
            key = data[pos + 2 : pos + 2 + n].decode(errors="replace")
            pos += 2 + n
            if n == 0 and data[pos] == 0x09:
                return obj, pos + 1
            obj[key], pos = _amf0(data, pos)
    if marker == 0x0A:
        count = struct.unpack(">I", data[pos : pos + 4])[0]
        pos += 4
        items = []
        for _ in range(count):
            item, pos = _amf0(data, pos)
            items.append(item)
        return items, pos
    raise ProtocolError(f"unsupported AMF0 marker {marker:#x}")


@dataclass
class _Stream:
    timestamp: int = 0
    length: int = 0
    type_id: int = 0
    extended: bool = False
    payload: bytearray = field(default_factory=bytearray)


@dataclass
class Opening:
    """What the sniffer learned: the application and the published stream name (the key)."""

    app: str | None = None
    name: str | None = None


class RtmpSniffer:
    """Feed client bytes; ``safe`` is how many may be relayed now (whole messages before
    ``publish``); once ``opening.name`` is set, parsing stops and the rest waits for the key check."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0  # bytes parsed
        self.safe = 0  # bytes that end on a whole message (before publish)
        self.chunk_size = 128
        self.streams: dict[int, _Stream] = {}
        self.opening = Opening()
        self.handshake_done = False

    @property
    def published(self) -> bool:
        return self.opening.name is not None

    def feed(self, data: bytes) -> None:
        self.buf += data
        if not self.handshake_done:
            if len(self.buf) < HANDSHAKE + C2:
                return
            if self.buf[0] != 3:
                raise ProtocolError("not RTMP (version byte)")
            self.pos = self.safe = HANDSHAKE + C2
            self.handshake_done = True
        while not self.published and self._chunk():
            pass

    def _need(self, n: int) -> bool:
        return len(self.buf) - self.pos >= n

    def _chunk(self) -> bool:
        """Parse one chunk at ``pos``; False when it is not complete yet."""
        start = self.pos
        if not self._need(1):
            return False
        b0 = self.buf[start]
        fmt, csid = b0 >> 6, b0 & 0x3F
        p = start + 1
        if csid == 0:
            if not self._need(2):
                return False
            csid, p = 64 + self.buf[p], p + 1
        elif csid == 1:
            if not self._need(3):
                return False
            csid, p = 64 + self.buf[p] + self.buf[p + 1] * 256, p + 2
        st = self.streams.setdefault(csid, _Stream())
        header = (11, 7, 3, 0)[fmt]
        if len(self.buf) - p < header:
            return False
        ts_field = int.from_bytes(self.buf[p : p + 3], "big") if fmt < 3 else None
        if fmt <= 1:
            length = int.from_bytes(self.buf[p + 3 : p + 6], "big")
            type_id = self.buf[p + 6]
        p += header
        extended = ts_field == 0xFFFFFF if ts_field is not None else st.extended
        if extended:
            if len(self.buf) - p < 4:
                return False
            ts_value = struct.unpack(">I", self.buf[p : p + 4])[0]
            p += 4
        elif ts_field is not None:
            ts_value = ts_field
        new_message = not st.payload
        if fmt <= 1:
            st.length, st.type_id = length, type_id
        if fmt == 0:
            st.timestamp = ts_value
        elif fmt in (1, 2) and new_message:
            st.timestamp += ts_value
        st.extended = extended
        remaining = st.length - len(st.payload)
        take = min(self.chunk_size, remaining)
        if len(self.buf) - p < take:
            return False
        st.payload += self.buf[p : p + take]
        self.pos = p + take
        if len(st.payload) >= st.length:
            message, st.payload = bytes(st.payload), bytearray()
            self._message(st.type_id, message)
            if not self.published:
                self.safe = self.pos
        return True

    def _message(self, type_id: int, payload: bytes) -> None:
        if type_id == MSG_SET_CHUNK_SIZE and len(payload) >= 4:
            self.chunk_size = max(1, struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF)
            return
        if type_id == MSG_AMF3_COMMAND:
            payload = payload[1:]
        elif type_id != MSG_AMF0_COMMAND:
            return
        values = amf0_values(payload)
        if not values or not isinstance(values[0], str):
            return
        command = values[0]
        if command == "connect" and len(values) > 2 and isinstance(values[2], dict):
            app = values[2].get("app")
            self.opening.app = str(app) if app is not None else None
        elif command == "publish":
            name = next((v for v in values[3:4] if isinstance(v, str)), None)
            if name is None:
                raise ProtocolError("publish without a stream name")
            self.opening.name = name
