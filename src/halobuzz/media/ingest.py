"""`halobuzz media`: the ingest front of a media host.

- ``nginx`` mode: Debian's nginx with libnginx-mod-rtmp, from the generated config; its
  ``on_publish``/``on_publish_done`` callbacks authenticate keys against the API.
- ``ffmpeg`` mode (nginx absent): a front on the RTMP port reads each publisher's opening up to
  ``publish``, asks the API about the key (the same callbacks), and only then lets the session
  through to an ffmpeg RTMP listener of its own, which remuxes it into the FLV hub.
- SRT (both modes, when ffmpeg has libsrt): ``srt://HOST:PORT?streamid=<key>``; the key is checked
  before an ffmpeg SRT listener is started for the publisher (``srt.py``).

Transcoders (in the API process) pull hub sessions over HTTP-FLV: the callback's ``source``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import time
from typing import Any

import httpx
import structlog

from halobuzz.config import Settings
from halobuzz.core.tasks import cancel_and_wait
from halobuzz.media import srt
from halobuzz.media.flv import FlvHub, FlvSession
from halobuzz.media.nginx import callback_url, find_nginx, render_conf, rtmp_module
from halobuzz.media.rtmp import HANDSHAKE, ProtocolError, RtmpSniffer

log = structlog.get_logger("halobuzz.media.ingest")

OPENING_TIMEOUT = 15.0  # from TCP accept to `publish`
BACKEND_START_TIMEOUT = 10.0
SRT_IDLE_SECONDS = 10.0


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ffmpeg_protocols(ffmpeg: str) -> set[str]:
    """The protocols this ffmpeg was built with (``srt`` needs libsrt)."""
    import subprocess

    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-protocols"], capture_output=True, text=True, timeout=20)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return {line.strip() for line in out.stdout.splitlines() if line.startswith("  ")}


class Hooks:
    """The API's ingest callbacks, called the way nginx-rtmp calls them (form posts)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(timeout=10.0)

    async def on_publish(self, key: str, *, source: str, addr: str, via: str) -> bool:
        url = callback_url(self.settings, "on_publish")
        try:
            r = await self.http.post(url, data={"call": "publish", "app": "live", "name": key, "source": source,
                                                "addr": addr, "via": via})  # fmt: skip
        except httpx.HTTPError as exc:
            log.warning("ingest.callback_failed", hook="on_publish", error=str(exc))
            return False
        return r.is_success

    async def on_update(self, key: str, *, via: str) -> bool:
        """False when the API refuses the publisher now (nginx-rtmp's on_update, non-strict: an
        unreachable API keeps the session)."""
        url = callback_url(self.settings, "on_update")
        try:
            r = await self.http.post(url, data={"call": "update_publish", "app": "live", "name": key, "via": via})
        except httpx.HTTPError as exc:
            log.warning("ingest.callback_failed", hook="on_update", error=str(exc))
            return True
        return r.status_code not in (403, 404)

    async def watch(self, key: str, *, via: str) -> None:
        """Return once the API no longer accepts this publisher (checked every MEDIA_UPDATE_SECONDS)."""
        while True:
            await asyncio.sleep(self.settings.media.update_seconds)
            if not await self.on_update(key, via=via):
                log.info("ingest.dropped", via=via, reason="not live")
                return

    async def on_publish_done(self, key: str) -> None:
        url = callback_url(self.settings, "on_publish_done")
        for attempt in range(5):
            try:
                await self.http.post(url, data={"call": "publish_done", "app": "live", "name": key})
                return
            except httpx.HTTPError as exc:
                log.warning("ingest.callback_failed", hook="on_publish_done", error=str(exc), attempt=attempt)
                await asyncio.sleep(0.5 * (attempt + 1))

    async def close(self) -> None:
        await self.http.aclose()


class Ingest:
    """The ffmpeg ingest: sessions, their remuxers, the hub and the key checks."""

    def __init__(self, settings: Settings, hooks: Hooks, hub: FlvHub) -> None:
        self.settings = settings
        self.hooks = hooks
        self.hub = hub
        self.ffmpeg = settings.media.ffmpeg
        self.active = 0
        self.tasks: set[asyncio.Future[Any]] = set()

    def spawn(self, coro: Any) -> asyncio.Future[Any]:
        task: asyncio.Future[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def remuxer(self, url: str) -> asyncio.subprocess.Process:
        """ffmpeg listening on ``url`` (one publisher), writing FLV to stdout unchanged (-c copy)."""
        argv = [self.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats"]
        if url.startswith("rtmp"):
            argv += ["-listen", "1", "-timeout", str(int(BACKEND_START_TIMEOUT))]
        argv += ["-i", url, "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "flv", "-flvflags", "no_duration_filesize", "pipe:1"]  # fmt: skip
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )

    async def pump(self, proc: asyncio.subprocess.Process, session: FlvSession) -> None:
        """The remuxer's FLV into the hub session until it exits."""
        assert proc.stdout is not None
        try:
            while chunk := await proc.stdout.read(65536):
                session.feed(chunk)
        except (ValueError, ConnectionError) as exc:
            log.warning("ingest.bad_flv", session=session.id, error=str(exc))
        finally:
            self.hub.close_session(session)

    async def finish(self, proc: asyncio.subprocess.Process | None) -> str:
        """Stop a remuxer (if still running) and return the end of its stderr."""
        if proc is None:
            return ""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        err = await proc.stderr.read() if proc.stderr else b""
        return err.decode(errors="replace")[-300:]


# ---------------------------------------------------------------------------------------- RTMP


class RtmpFront:
    """TCP on the RTMP port: key check at ``publish``, then a relay to a per-publisher ffmpeg listener."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._client, host, port)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ingest = self.ingest
        peer = writer.get_extra_info("peername") or ("?", 0)
        if ingest.active >= ingest.settings.media.ingest_max_sessions:
            writer.close()
            return
        ingest.active += 1
        proc: asyncio.subprocess.Process | None = None
        session: FlvSession | None = None
        key: str | None = None
        accepted = False
        backend_writer: asyncio.StreamWriter | None = None
        try:
            sniffer = RtmpSniffer()
            first = await asyncio.wait_for(reader.readexactly(HANDSHAKE), OPENING_TIMEOUT)
            if first[0] != 3:
                return
            # A real RTMP opening arrived: start this publisher's listener and relay to it.
            port = free_port()
            proc = await ingest.remuxer(f"rtmp://127.0.0.1:{port}/live/stream")
            backend_reader, backend_writer = await _connect_when_listening(port, proc)
            relay_back = ingest.spawn(_copy(backend_reader, writer))
            sniffer.feed(first)
            sent = 0
            deadline = time.monotonic() + OPENING_TIMEOUT

            def forward(upto: int) -> None:
                nonlocal sent
                if upto > sent:
                    assert backend_writer is not None
                    backend_writer.write(bytes(sniffer.buf[sent:upto]))
                    sent = upto

            forward(HANDSHAKE)
            while not sniffer.published:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                data = await asyncio.wait_for(reader.read(65536), remaining)
                if not data:
                    return
                sniffer.feed(data)
                forward(sniffer.safe if sniffer.handshake_done else len(sniffer.buf))
                await backend_writer.drain()
            key = (sniffer.opening.name or "").split("?", 1)[0]
            if sniffer.opening.app not in (None, "live"):
                log.info("ingest.rtmp_refused", reason="app", app=sniffer.opening.app, addr=peer[0])
                return
            session = ingest.hub.create()
            ok = await ingest.hooks.on_publish(key, source=ingest.hub.url(session), addr=peer[0], via="rtmp")
            if not ok:
                log.info("ingest.rtmp_refused", reason="key", addr=peer[0])
                return
            accepted = True
            log.info("ingest.rtmp_publish", session=session.id, addr=peer[0])
            pump = ingest.spawn(ingest.pump(proc, session))
            forward(len(sniffer.buf))
            await backend_writer.drain()
            relay_up = ingest.spawn(_copy(reader, backend_writer))
            watch = ingest.spawn(ingest.hooks.watch(key, via="rtmp"))
            try:
                await asyncio.wait([relay_up, relay_back, pump, watch], return_when=asyncio.FIRST_COMPLETED)
            finally:
                watch.cancel()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ProtocolError) as exc:
            log.info("ingest.rtmp_closed", addr=peer[0], error=type(exc).__name__)
        finally:
            ingest.active -= 1
            writer.close()
            if backend_writer is not None:
                backend_writer.close()
            err = await ingest.finish(proc)
            if session is not None:
                ingest.hub.close_session(session)
            if accepted and key is not None:
                log.info("ingest.rtmp_done", session=session.id if session else None, stderr=err or None)
                await ingest.hooks.on_publish_done(key)


async def _connect_when_listening(
    port: int, proc: asyncio.subprocess.Process
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the listener as soon as it listens (its one accepted connection is this one)."""
    deadline = time.monotonic() + BACKEND_START_TIMEOUT
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if proc.returncode is not None or time.monotonic() > deadline:
                raise ConnectionError("the ffmpeg listener did not start") from None
            await asyncio.sleep(0.02)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


# ----------------------------------------------------------------------------------------- SRT


class _SrtBackend(asyncio.DatagramProtocol):
    def __init__(self, caller: _SrtCaller) -> None:
        self.caller = caller

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.caller.from_backend(data)


class _SrtCaller:
    """One SRT publisher: pending (key check, listener start), then relaying."""

    def __init__(self, front: SrtFront, addr: tuple[str, int], conclusion: srt.Handshake, key: str) -> None:
        self.front = front
        self.addr = addr
        self.conclusion = conclusion
        self.key = key
        self.state = "pending"  # pending | relaying | rejected | closed
        self.backend: asyncio.DatagramTransport | None = None
        self.backend_cookie: int | None = None
        self.cookie_seen = asyncio.Event()
        self.last_seen = time.monotonic()
        self.proc: asyncio.subprocess.Process | None = None

    def from_caller(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        if self.state == "rejected":
            if srt.is_handshake(data):
                self.front.send(srt.rejection(srt.parse(data)), self.addr)
            return
        if self.state != "relaying" or self.backend is None:
            return  # conclusions repeated while the key is checked
        if srt.is_handshake(data) and self.backend_cookie is not None:
            hs = srt.parse(data)
            if hs.type == srt.HS_CONCLUSION:
                data = srt.with_cookie(data, self.backend_cookie)
            elif hs.type == srt.HS_INDUCTION:
                return
        self.backend.sendto(data)

    def from_backend(self, data: bytes) -> None:
        if self.backend_cookie is None and srt.is_handshake(data):
            hs = srt.parse(data)
            if hs.type == srt.HS_INDUCTION:
                self.backend_cookie = hs.cookie
                self.cookie_seen.set()
                return
        self.front.send(data, self.addr)

    async def run(self) -> None:
        ingest = self.front.ingest
        session: FlvSession | None = None
        accepted = False
        try:
            session = ingest.hub.create()
            ok = bool(self.key) and await ingest.hooks.on_publish(
                self.key, source=ingest.hub.url(session), addr=self.addr[0], via="srt"
            )
            if not ok:
                log.info("ingest.srt_refused", addr=self.addr[0])
                self.state = "rejected"
                self.front.send(srt.rejection(self.conclusion), self.addr)
                await asyncio.sleep(10)  # keep answering repeats with the refusal
                return
            accepted = True
            port = free_port(socket.SOCK_DGRAM)
            latency = ingest.settings.media.srt_latency_ms * 1000
            self.proc = await ingest.remuxer(f"srt://127.0.0.1:{port}?mode=listener&latency={latency}")
            loop = asyncio.get_running_loop()
            self.backend, _ = await loop.create_datagram_endpoint(
                lambda: _SrtBackend(self), remote_addr=("127.0.0.1", port)
            )
            induction = srt.induction_for(self.conclusion)
            deadline = time.monotonic() + BACKEND_START_TIMEOUT
            while not self.cookie_seen.is_set():
                if self.proc.returncode is not None or time.monotonic() > deadline:
                    raise ConnectionError("the ffmpeg SRT listener did not start")
                self.backend.sendto(induction)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.cookie_seen.wait(), 0.1)
            assert self.backend_cookie is not None
            self.state = "relaying"
            self.backend.sendto(srt.with_cookie(self.conclusion.raw, self.backend_cookie))
            log.info("ingest.srt_publish", session=session.id, addr=self.addr[0])
            pump = ingest.spawn(ingest.pump(self.proc, session))
            watch = ingest.spawn(ingest.hooks.watch(self.key, via="srt"))
            try:
                while not pump.done() and not watch.done():
                    await asyncio.wait([pump, watch], timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                    if time.monotonic() - self.last_seen > SRT_IDLE_SECONDS:
                        break
            finally:
                watch.cancel()
        except (ConnectionError, OSError) as exc:
            log.warning("ingest.srt_failed", addr=self.addr[0], error=str(exc))
        finally:
            self.state = "closed"
            # The listener first, while its datagrams still reach the caller: its SRT shutdown
            # tells the publisher the session is over.
            await ingest.finish(self.proc)
            self.front.callers.pop(self.addr, None)
            if self.backend is not None:
                self.backend.close()
            if session is not None:
                ingest.hub.close_session(session)
            if accepted:
                await ingest.hooks.on_publish_done(self.key)


class SrtFront(asyncio.DatagramProtocol):
    """UDP on the SRT port: induction answered statelessly, conclusion → key check → relay."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest
        self.secret = secrets.token_bytes(32)
        self.callers: dict[tuple[str, int], _SrtCaller] = {}
        self.transport: asyncio.DatagramTransport | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        caller = self.callers.get(addr)
        if caller is not None:
            caller.from_caller(data)
            return
        if not srt.is_handshake(data):
            return
        hs = srt.parse(data)
        if hs.type == srt.HS_INDUCTION:
            self.send(srt.induction_response(hs, srt.cookie(self.secret, addr)), addr)
        elif hs.type == srt.HS_CONCLUSION and hs.version == 5 and srt.cookie_ok(self.secret, addr, hs.cookie):
            if len(self.callers) >= self.ingest.settings.media.ingest_max_sessions:
                self.send(srt.rejection(hs), addr)
                return
            sid = srt.stream_id(hs) or ""
            caller = _SrtCaller(self, addr, hs, srt.key_of(sid))
            self.callers[addr] = caller
            self.ingest.spawn(caller.run())

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# ------------------------------------------------------------------------------------- process


def choose_mode(settings: Settings) -> str:
    mode = settings.media.ingest
    if mode == "auto":
        return "nginx" if find_nginx(settings) and rtmp_module() else "ffmpeg"
    return mode


async def serve(settings: Settings, *, bind: str = "0.0.0.0", stop: asyncio.Event | None = None) -> None:  # noqa: S104
    """Run the ingest until ``stop`` is set (or SIGINT/SIGTERM)."""
    media = settings.media
    mode = choose_mode(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    hooks = Hooks(settings)
    hub = FlvHub(media.ingest_host, media.hub_port)
    ingest = Ingest(settings, hooks, hub)
    rtmp_front: RtmpFront | None = None
    srt_front: SrtFront | None = None
    nginx: asyncio.subprocess.Process | None = None
    await hub.start()
    try:
        if mode == "nginx":
            binary = find_nginx(settings)
            if binary is None:
                raise RuntimeError("nginx is not installed (apt-get install nginx-light libnginx-mod-rtmp)")
            work = (settings.data_dir / "media" / "nginx").resolve()
            work.mkdir(parents=True, exist_ok=True)
            conf = work / "nginx.conf"
            conf.write_text(render_conf(settings, work))
            nginx = await asyncio.create_subprocess_exec(binary, "-p", str(work), "-c", str(conf))
            log.info("ingest.started", mode="nginx", rtmp_port=media.rtmp_port, config=str(conf))
        else:
            rtmp_front = RtmpFront(ingest)
            port = await rtmp_front.start(bind, media.rtmp_port)
            log.info("ingest.started", mode="ffmpeg", rtmp_port=port, hub_port=hub.port)
        if media.srt_port:
            if "srt" in ffmpeg_protocols(media.ffmpeg):
                srt_front = SrtFront(ingest)
                port = await srt_front.start(bind, media.srt_port)
                log.info("ingest.srt_started", srt_port=port)
            else:
                log.warning("ingest.srt_unavailable", hint="this ffmpeg has no libsrt (Debian's ffmpeg has it)")
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if nginx is not None:
            waiters.append(asyncio.ensure_future(nginx.wait()))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
    finally:
        if rtmp_front is not None:
            await rtmp_front.close()
        if srt_front is not None:
            await srt_front.close()
        await cancel_and_wait(list(ingest.tasks))
        await hub.close()
        await hooks.close()
        if nginx is not None and nginx.returncode is None:
            nginx.terminate()
            await nginx.wait()
        log.info("ingest.stopped")


def run(settings: Settings) -> None:
    """The `halobuzz media` command."""
    asyncio.run(serve(settings, bind=settings.media.ingest_bind))
