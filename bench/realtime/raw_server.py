"""The ceiling for a room broadcast: a raw asyncio server that writes one pre-built websocket frame
to every member's socket.

It speaks just enough Engine.IO v4 / Socket.IO v5 over websocket for the benchmark's load client
(open packet, connect, ping/pong, ``join_stream`` and ``send_message`` with acks) and does nothing
else: no ASGI, no Socket.IO library, no storage. ``send_message`` frames the ``new_message`` packet
once and writes the same bytes to each member's transport.

    python raw_server.py PORT
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
import struct
import sys
import uuid
from datetime import UTC, datetime

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
EPOCH = str(uuid.uuid4())
rooms: dict[str, set[asyncio.Transport]] = {}
seqs: dict[str, int] = {}


def frame(text: str) -> bytes:
    data = text.encode()
    size = len(data)
    if size < 126:
        return bytes((0x81, size)) + data
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + data
    return struct.pack("!BBQ", 0x81, 127, size) + data


class Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.upgraded = False
        self.signed_in = False
        self.rooms: set[str] = set()
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        for name in self.rooms:
            rooms.get(name, set()).discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4 :]
            headers = {}
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            key = headers.get("sec-websocket-key")
            if key is None:
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                self.transport.close()
                return
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()  # noqa: S324 (RFC 6455)
            self.transport.write(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
                ).encode()
            )
            self.upgraded = True
            opened = {
                "sid": uuid.uuid4().hex,
                "upgrades": [],
                "pingInterval": 25000,
                "pingTimeout": 20000,
                "maxPayload": 1000000,
            }
            self.transport.write(frame("0" + json.dumps(opened)))
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            size, pos = b1 & 0x7F, 2
            if size == 126:
                if len(self.buf) < 4:
                    return
                size, pos = struct.unpack("!H", self.buf[2:4])[0], 4
            elif size == 127:
                if len(self.buf) < 10:
                    return
                size, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
            masked = b1 & 0x80
            if len(self.buf) < pos + (4 if masked else 0) + size:
                return
            if masked:
                mask = self.buf[pos : pos + 4]
                pos += 4
                raw = self.buf[pos : pos + size]
                payload = (
                    int.from_bytes(raw, "big") ^ int.from_bytes((mask * (size // 4 + 1))[:size], "big")
                ).to_bytes(size, "big")
            else:
                payload = self.buf[pos : pos + size]
            self.buf = self.buf[pos + size :]
            opcode = b0 & 0x0F
            if opcode == 0x8:
                self.transport.close()
                return
            if opcode == 0x1:
                self.packet(payload.decode())

    def packet(self, text: str) -> None:
        if text == "3":
            return
        if text.startswith("40"):
            self.signed_in = len(text) > 2 and "token" in text
            self.transport.write(frame('40{"sid":"' + uuid.uuid4().hex + '"}'))
            return
        if not text.startswith("42"):
            return
        i = 2
        while text[i].isdigit():
            i += 1
        ack_id = text[2:i]
        event, data = json.loads(text[i:])[:2]
        if event == "join_stream":
            name = data["stream_id"]
            rooms.setdefault(name, set()).add(self.transport)
            self.rooms.add(name)
            reply = {"ok": True, "epoch": EPOCH, "last_seq": seqs.get(name, 0), "recovered": False, "messages": []}
        elif event == "send_message" and self.signed_in:
            name = data["stream_id"]
            seqs[name] = seqs.get(name, 0) + 1
            message = {
                "id": str(uuid.uuid4()),
                "stream_id": name,
                "user": {"id": "publisher", "username": "publisher"},
                "text": str(data["text"]).strip(),
                "epoch": EPOCH,
                "seq": seqs[name],
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
            out = frame('42["new_message",' + json.dumps(message, separators=(",", ":")) + "]")
            for transport in rooms.get(name, ()):
                transport.write(out)
            reply = {"ok": True, "message": message}
        else:
            reply = {"ok": False, "error": {"code": "unsupported"}}
        if ack_id:
            self.transport.write(frame(f"43{ack_id}" + json.dumps([reply], separators=(",", ":"))))


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(Conn, "127.0.0.1", port, backlog=4096)
    print(f"listening on {port}", flush=True)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
