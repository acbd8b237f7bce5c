"""An FLV hub: one live session per publisher, read by any number of HTTP-FLV pullers.

The ffmpeg ingest (RTMP listeners without nginx, and SRT) remuxes each authenticated publisher to
FLV on its stdout; the hub keeps the stream's header, metadata, codec configuration and the tags
since the last keyframe, so a puller that connects at any moment (the transcoder's probe, the
transcoder, a restarted transcoder) starts with a decodable stream. Pullers that fall behind are
dropped rather than buffered without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
from collections.abc import Iterator

import structlog

log = structlog.get_logger("halobuzz.media.ingest")

TAG_AUDIO, TAG_VIDEO, TAG_SCRIPT = 8, 9, 18
GOP_MAX_BYTES = 8 * 1024 * 1024
AUDIO_ONLY_CACHE_TAGS = 64
READER_QUEUE = 2048
READY_TIMEOUT = 20.0


class FlvParser:
    """Splits an FLV byte stream into its header and whole tags (each with its PreviousTagSize)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.header: bytes | None = None

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self.buf += data
        if self.header is None:
            if len(self.buf) < 13:
                return
            if self.buf[:3] != b"FLV":
                raise ValueError("not an FLV stream")
            offset = struct.unpack(">I", self.buf[5:9])[0]
            if len(self.buf) < offset + 4:
                return
            self.header = bytes(self.buf[: offset + 4])
            del self.buf[: offset + 4]
        while len(self.buf) >= 11:
            size = int.from_bytes(self.buf[1:4], "big")
            total = 11 + size + 4
            if len(self.buf) < total:
                return
            tag = bytes(self.buf[:total])
            del self.buf[:total]
            yield tag[0] & 0x1F, tag


class FlvSession:
    """One publisher's stream as pullers see it."""

    def __init__(self, session_id: str) -> None:
        self.id = session_id
        self.header: bytes | None = None
        self.meta: bytes | None = None
        self.video_config: bytes | None = None
        self.audio_config: bytes | None = None
        self.gop: list[bytes] = []
        self.gop_bytes = 0
        self.has_video = False
        self.readers: set[asyncio.Queue[bytes | None]] = set()
        self.ready = asyncio.Event()
        self.ended = False
        self.bytes_in = 0
        self._parser = FlvParser()

    def feed(self, data: bytes) -> None:
        """Bytes from the remuxer's stdout."""
        self.bytes_in += len(data)
        for kind, tag in self._parser.feed(data):
            if self.header is None:
                self.header = self._parser.header
            self._tag(kind, tag)

    def _tag(self, kind: int, tag: bytes) -> None:
        body = tag[11:12]
        if kind == TAG_SCRIPT:
            self.meta = tag
        elif kind == TAG_VIDEO and body:
            self.has_video = True
            keyframe = body[0] >> 4 == 1
            config = len(tag) > 12 and body[0] & 0x0F == 7 and tag[12] == 0
            if config:
                self.video_config = tag
            elif keyframe:
                self.gop, self.gop_bytes = [], 0
        elif kind == TAG_AUDIO and body and body[0] >> 4 == 10 and len(tag) > 12 and tag[12] == 0:
            self.audio_config = tag
        if kind in (TAG_AUDIO, TAG_VIDEO) and tag not in (self.video_config, self.audio_config):
            if self.has_video:
                if self.gop or (kind == TAG_VIDEO and body[0] >> 4 == 1):
                    self.gop.append(tag)
                    self.gop_bytes += len(tag)
                    if self.gop_bytes > GOP_MAX_BYTES:
                        self.gop, self.gop_bytes = [], 0
            else:
                self.gop.append(tag)
                if len(self.gop) > AUDIO_ONLY_CACHE_TAGS:
                    del self.gop[0]
        if self.header is not None and (self.meta is not None or kind != TAG_SCRIPT):
            self.ready.set()
        for queue in list(self.readers):
            try:
                queue.put_nowait(tag)
            except asyncio.QueueFull:  # a puller that cannot keep up is dropped
                self.readers.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)

    def start_bytes(self) -> bytes:
        """What a new puller receives first: header, metadata, codec configuration, current GOP."""
        parts = [self.header or b"", self.meta or b"", self.video_config or b"", self.audio_config or b""]
        return b"".join(parts) + b"".join(self.gop)

    def subscribe(self) -> asyncio.Queue[bytes | None]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(READER_QUEUE)
        if self.ended:
            queue.put_nowait(None)
        else:
            self.readers.add(queue)
        return queue

    def end(self) -> None:
        self.ended = True
        self.ready.set()
        for queue in list(self.readers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self.readers.clear()


class FlvHub:
    """Sessions by id, served over HTTP: ``GET /live/<session id>.flv``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sessions: dict[str, FlvSession] = {}
        self.server: asyncio.Server | None = None

    def create(self) -> FlvSession:
        session = FlvSession(secrets.token_urlsafe(12))
        self.sessions[session.id] = session
        return session

    def url(self, session: FlvSession) -> str:
        return f"http://{self.host}:{self.port}/live/{session.id}.flv"

    def close_session(self, session: FlvSession) -> None:
        session.end()
        self.sessions.pop(session.id, None)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            self.close_session(session)
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            parts = head.split(b"\r\n", 1)[0].split()
            path = parts[1].decode(errors="replace") if len(parts) >= 2 and parts[0] == b"GET" else ""
            name = path.removeprefix("/live/").removesuffix(".flv")
            session = self.sessions.get(name) if path.startswith("/live/") and path.endswith(".flv") else None
            if session is None:
                writer.write(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
            queue = session.subscribe()
            try:
                await asyncio.wait_for(session.ready.wait(), READY_TIMEOUT)
                writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: video/x-flv\r\nConnection: close\r\n\r\n")
                writer.write(session.start_bytes())
                await writer.drain()
                while (tag := await queue.get()) is not None:
                    writer.write(tag)
                    await writer.drain()
            finally:
                session.readers.discard(queue)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
