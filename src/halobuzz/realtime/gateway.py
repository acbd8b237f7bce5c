"""The Socket.IO gateway: connections, rooms, chat delivery with (epoch, seq) replay, presence.

python-socketio speaks the protocol (handshake, auth, acks); rooms and broadcasting are ours:

* Broadcast path: a room message is encoded once into an Engine.IO packet and the same packet is
  queued to every member (no per-recipient JSON, no per-recipient Socket.IO packet). A member
  whose queue holds ``max_queue_per_connection`` packets is too slow: it is disconnected rather
  than slowing the room or growing without bound.
* Rooms: ``stream:{id}`` (joined with ``join_stream``) and ``user:{id}`` (joined at connect by
  every authenticated socket). Messages reach an instance only for rooms it has members in (see
  ``backend``).
* Sign-in revocations (logout, password change, suspension, ban …) reach the gateway through
  ``runtime.sessions`` listeners on every instance: the user's sockets are re-checked against the
  database at once and those whose session or account may no longer sign in are disconnected.
* Joining with (epoch, last_seq) replays exactly what the client missed: messages published while
  the join is in progress are held for the joining socket and folded into its ack, and later
  copies of messages already in the ack are skipped, so there is no gap and no duplicate.

Handlers run one at a time per connection (``async_handlers=False``), so a client's messages keep
their order.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
import socketio
import structlog
from prometheus_client import Counter, Gauge
from pydantic import ValidationError
from starlette.types import Message, Scope, Send

from halobuzz.accounts.auth import authenticate_access_token
from halobuzz.chat import service as chat_service
from halobuzz.chat.models import MessageStatus
from halobuzz.chat.writer import ChatWriter
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import DomainError, Forbidden, TooManyRequests, Unauthorized
from halobuzz.core.ids import uuid7
from halobuzz.core.kv import RedisStore
from halobuzz.core.observability import client_ip
from halobuzz.core.runtime import Runtime
from halobuzz.core.tasks import cancel_and_wait
from halobuzz.realtime import service
from halobuzz.realtime.backend import Backend, MemoryBackend, RedisBackend
from halobuzz.realtime.codec import Packet, dumps, event_frame
from halobuzz.realtime.counts import ThrottledCounts
from halobuzz.realtime.engine import Socket, SocketServer
from halobuzz.realtime.manager import IndexedManager
from halobuzz.realtime.schemas import JoinStreamIn, SendGiftIn, SendMessageIn, StreamRef
from halobuzz.realtime.wire import Link, Pinger, limit_send_buffer, websocket_frame

log = structlog.get_logger(__name__)

CONNECTIONS = Gauge("halobuzz_realtime_connections", "Open Socket.IO connections on this instance")
DROPPED = Counter("halobuzz_realtime_slow_consumers_total", "Connections dropped for falling behind")
DELIVERIES = Counter(
    "halobuzz_realtime_deliveries_total", "Events delivered to sockets, by path (direct write or queue)", ["path"]
)
DIRECT, QUEUED = DELIVERIES.labels(path="direct"), DELIVERIES.labels(path="queue")
SESSIONS_ENDED = Counter(
    "halobuzz_realtime_sessions_ended_total", "Sockets disconnected because their sign-in ended", ["code"]
)
CHAT_MESSAGES = Counter("halobuzz_chat_messages_total", "Chat messages by outcome", ["outcome"])

LIVE_CACHE_TAG = "streams"
# Followers told of a go-live per database query (and per pipelined publish).
FOLLOWER_BATCH = 5000
Ack = dict[str, Any]


def stream_room(stream_id: uuid.UUID | str) -> str:
    return f"stream:{stream_id}"


def user_room(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}"


@dataclass(eq=False, slots=True)
class Conn:
    """One connected socket."""

    sid: str
    eio_sid: str
    user_id: uuid.UUID | None
    username: str | None
    # The sign-in session of the access token the socket connected with.
    session_id: uuid.UUID | None = None
    rooms: set[str] = field(default_factory=set)
    closed: bool = False
    dropped: bool = False
    # The Engine.IO socket, and its websocket when the direct write path can reach it.
    sock: Any = None
    link: Link | None = None

    @property
    def member_key(self) -> str:
        """Who counts as one viewer: the user, or the connection when anonymous."""
        return f"u:{self.user_id}" if self.user_id is not None else f"c:{self.sid}"


# A delivery held for a socket that is joining: (event, epoch, seq, body, packet).
Held = tuple[str, str | None, int | None, str, Any]


@dataclass(eq=False, slots=True)
class Room:
    name: str
    members: dict[str, Conn] = field(default_factory=dict)
    joining: dict[str, list[Held]] = field(default_factory=dict)
    # Per joined socket: the (epoch, seq) its join ack ended at; older copies are skipped.
    floors: dict[str, tuple[str, int]] = field(default_factory=dict)
    # The last message delivered here (gap detection on the shared bus).
    epoch: str | None = None
    last_seq: int = 0
    release: asyncio.TimerHandle | None = None
    # Events waiting for the next flush to the members: (event, epoch, seq, body), in order.
    outbox: list[tuple[str, str | None, int | None, str]] = field(default_factory=list)
    # When the last flush ended and how long it took (time.monotonic() seconds).
    flushed_at: float = 0.0
    flush_cost: float = 0.0


def _error(exc: DomainError) -> Ack:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details is not None:
        error["details"] = exc.details
    return {"ok": False, "error": error}


async def _bounded(coro: Coroutine[Any, Any, Any], step: str, seconds: float) -> None:
    try:
        await asyncio.wait_for(coro, timeout=seconds)
    except TimeoutError:
        log.warning("realtime_stop_step_timed_out", step=step, seconds=seconds)
    except Exception:
        log.exception("realtime_stop_step_failed", step=step)


def _refused(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    """A refused connection: clients get ``connect_error`` with ``{message, data: {code, message}}``."""
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})


def _invalid(exc: ValidationError) -> Ack:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid payload"}
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return {"ok": False, "error": {"code": "invalid_input", "message": message}}


class _TrackedSend:
    """Wraps a websocket's ASGI ``send`` to learn its Engine.IO sid from the OPEN packet."""

    __slots__ = ("gateway", "proto", "send", "sid")

    def __init__(self, gateway: Gateway, proto: Any, send: Send) -> None:
        self.gateway = gateway
        self.proto = proto
        self.send = send
        self.sid: str | None = None

    async def __call__(self, message: Message) -> None:
        if self.sid is None and message.get("type") == "websocket.send":
            text = message.get("text")
            if text and text.startswith("0{"):
                with suppress(ValueError, AttributeError, KeyError):
                    self.sid = str(orjson.loads(text[1:])["sid"])
                    self.gateway._register(self.sid, self.proto)
        await self.send(message)


def _origin_check(allowed: list[str]):  # type: ignore[no-untyped-def]
    """Allow the configured origins, and the server's own origin (the web app's pages)."""
    configured = set(allowed)

    def check(origin: str | None, environ: dict[str, object]) -> bool:
        if origin is None or "*" in configured or origin in configured:
            return True
        host = environ.get("HTTP_HOST")
        scheme = environ.get("wsgi.url_scheme", "http")
        return isinstance(host, str) and origin in (f"{scheme}://{host}", f"https://{host}")

    return check


class Gateway:
    """One instance's Socket.IO server and its rooms (``runtime.extras["realtime"]``)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.settings = settings.realtime
        self.chat_settings = settings.chat
        self.instance_id = secrets.token_hex(6)
        self.backend: Backend
        if isinstance(runtime.kv, RedisStore):
            self.backend = RedisBackend(
                runtime.kv.client,
                prefix=runtime.kv.prefix,
                instance_id=self.instance_id,
                window=self.settings.recovery_max_messages,
                max_age=self.settings.recovery_max_seconds,
                history=self.settings.join_history,
                presence_ttl=self.settings.presence_ttl_seconds,
            )
        else:
            self.backend = MemoryBackend(
                window=self.settings.recovery_max_messages,
                max_age=self.settings.recovery_max_seconds,
                history=self.settings.join_history,
            )
        self.sio = SocketServer(
            async_mode="asgi",
            client_manager=IndexedManager(),
            cors_allowed_origins=_origin_check(list(settings.http.cors_origins)),
            ping_interval=self.settings.ping_interval_seconds,
            ping_timeout=self.settings.ping_timeout_seconds,
            monitor_clients=False,  # the pinger sweeps instead (see Pinger.run)
            max_http_buffer_size=64 * 1024,
            async_handlers=False,
            serializer=Packet,
            logger=False,
            engineio_logger=False,
        )
        self.writer = ChatWriter(
            runtime.db,
            flush_interval_ms=self.chat_settings.flush_interval_ms,
            max_rows=self.chat_settings.flush_max_rows,
        )
        # Called before every chat message is broadcast (the AI moderation plugs in here).
        self.moderation_hook: chat_service.ModerationHook = chat_service.allow_all
        # Registered by the economy to let subscribers through subscribers-only mode.
        self.subscription_check: chat_service.SubscriptionCheck | None = None
        self.conns: dict[str, Conn] = {}
        self.rooms: dict[str, Room] = {}
        self._viewers: dict[str, dict[str, int]] = {}  # stream id → member key → local sockets
        self._links: dict[str, Link] = {}  # Engine.IO sid → its websocket (direct path)
        self.pinger: Pinger = self.sio.eio.pinger  # every connection's heartbeats (engine.Socket)
        self._by_eio: dict[str, Conn] = {}  # Engine.IO sid → connection
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._invalidated_at = 0.0
        self._started = False
        self.viewer_counts = ThrottledCounts(
            kind="viewers",
            interval=self.settings.count_interval_seconds,
            backend=self.backend,
            compute=self.backend.presence_count,
            announce=self._announce_viewers,
        )
        self.like_counts = ThrottledCounts(
            kind="likes",
            interval=self.settings.count_interval_seconds,
            backend=self.backend,
            compute=self._like_count,
            announce=self._announce_likes,
        )
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        for event, handler in (
            ("join_stream", self._join_stream),
            ("leave_stream", self._leave_stream),
            ("send_message", self._send_message),
            ("like_stream", self._like_stream),
            ("send_gift", self._send_gift),
        ):
            self.sio.on(event, self._handler(handler))

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the background work: the bus, the chat writer, counts and presence heartbeats."""
        await self.backend.start(self._on_bus_message)
        self.writer.start()
        self.viewer_counts.start()
        self.like_counts.start()
        self._loops.append(asyncio.create_task(self._heartbeat(), name="realtime-heartbeat"))
        self._loops.append(asyncio.create_task(self.pinger.run(self.sio.eio.sockets), name="realtime-pinger"))
        self.runtime.sessions.listeners.append(self._on_user_invalidated)
        self._started = True

    async def stop(self) -> None:
        """Drop every connection, stop the background work, write pending chat messages.

        Each step is bounded so a stuck dependency cannot hold the shutdown; the chat writer's
        final flush goes last and gets the most time.
        """
        if not self._started:
            return
        self._started = False
        began = time.monotonic()
        with suppress(ValueError):
            self.runtime.sessions.listeners.remove(self._on_user_invalidated)
        for link in list(self._links.values()):
            link.abort()
        for sock in list(self.sio.eio.sockets.values()):
            with suppress(Exception):
                await _bounded(sock.close(wait=False, abort=True), "socket_close", 1.0)
        await _bounded(self.sio.shutdown(), "socketio_shutdown", 1.0)
        await cancel_and_wait(self._loops)
        self._loops.clear()
        await self.viewer_counts.stop()
        await self.like_counts.stop()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        await _bounded(self._forget_viewers(), "presence_cleanup", 1.0)
        await _bounded(self.backend.stop(), "backend_stop", 1.0)
        await _bounded(self.writer.close(), "chat_flush", 10.0)
        log.info("realtime_stopped", seconds=round(time.monotonic() - began, 3))

    async def _forget_viewers(self) -> None:
        for stream_id, members in list(self._viewers.items()):
            for member in members:
                await self.backend.presence_remove(stream_id, member)
        self._viewers.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def drain(self) -> None:
        """Wait until the background work started so far (announcements, recounts) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.viewer_counts.settle()
        await self.like_counts.settle()

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("realtime_task_failed", error=repr(task.exception()))

    async def _heartbeat(self) -> None:
        interval = self.settings.presence_heartbeat_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.backend.presence_heartbeat({s: list(m) for s, m in self._viewers.items()})
                # One instance per interval recounts every watched stream, so the viewers of an
                # instance that died stop counting once their entries expire.
                if await self.backend.try_lock("presence-sweep", int(interval * 1000)):
                    for stream_id in await self.backend.presence_streams():
                        self.viewer_counts.mark(stream_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("realtime_heartbeat_failed")

    # ------------------------------------------------------------------ ASGI

    async def handle(self, scope: Scope, receive: Any, send: Send) -> None:
        """Serve a ``/socket.io`` request (long-polling or websocket)."""
        if scope["type"] != "websocket":
            await self.sio.handle_request(scope, receive, send)
            return
        proto = getattr(send, "__self__", None)
        if getattr(proto, "transport", None) is None:
            await self.sio.handle_request(scope, receive, send)
            return
        if self.settings.socket_send_buffer_bytes:
            limit_send_buffer(proto, self.settings.socket_send_buffer_bytes)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        sid = (query.get("sid") or [None])[0]
        if sid:  # an upgrade from long-polling names its session
            self._register(sid, proto)
            try:
                await self.sio.handle_request(scope, receive, send)
            finally:
                self._unregister(sid)
            return
        tracked = _TrackedSend(self, proto, send)
        try:
            await self.sio.handle_request(scope, receive, tracked)
        finally:
            if tracked.sid is not None:
                self._unregister(tracked.sid)

    def _register(self, eio_sid: str, proto: Any) -> None:
        link = self._links[eio_sid] = Link(proto)
        conn = self._by_eio.get(eio_sid)
        if conn is not None:
            conn.link = link
        sock = self.sio.eio.sockets.get(eio_sid)
        if isinstance(sock, Socket):
            sock.link = link

    def _unregister(self, eio_sid: str) -> None:
        self._links.pop(eio_sid, None)
        conn = self._by_eio.get(eio_sid)
        if conn is not None:
            conn.link = None
        sock = self.sio.eio.sockets.get(eio_sid)
        if isinstance(sock, Socket):
            sock.link = None

    # ------------------------------------------------------------------ connections

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        settings = self.runtime.settings
        if settings.rate_limit.enabled:
            scope = environ.get("asgi.scope") or {}
            ip = client_ip(scope, settings.http.trust_forwarded_for)
            per_minute = self.settings.connects_per_ip_per_minute
            allowed, _, wait = await self.runtime.kv.take(f"rt:connect:{ip}", per_minute, 60.0)
            if not allowed:
                raise _refused("rate_limited", f"too many connections from this address; retry in {wait:.0f} s")
        if auth is not None and not isinstance(auth, dict):
            raise _refused("invalid_auth", "auth must be an object like {token: <access token>}")
        token = (auth or {}).get("token")
        user = None
        session_id = None
        generation = self.runtime.sessions.generation
        if token is not None:
            if not isinstance(token, str) or not token.strip():
                raise _refused("invalid_token", "token must be an access token string")
            try:
                async with self.runtime.db.session(write=False) as session:
                    user = await authenticate_access_token(session=session, jwt=self.runtime.jwt, token=token.strip())
                session_id = self.runtime.jwt.decode_access(token.strip()).session_id
            except Unauthorized as exc:
                raise _refused(exc.code, exc.message) from None
            except Exception:
                log.exception("realtime_auth_failed")
                raise _refused("unavailable", "sign-in cannot be checked right now; retry shortly") from None
        if user is not None:
            try:
                await self.backend.subscribe(user_room(user.id))
            except Exception:
                log.exception("realtime_subscribe_failed")
                raise _refused("unavailable", "the real-time service is not ready; retry shortly") from None
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        conn = Conn(
            sid=sid,
            eio_sid=eio_sid,
            user_id=user.id if user else None,
            username=user.username if user else None,
            session_id=session_id,
        )
        conn.sock = self.sio.eio.sockets.get(eio_sid)
        conn.link = self._links.get(eio_sid)
        self.conns[sid] = conn
        self._by_eio[eio_sid] = conn
        CONNECTIONS.inc()
        if user is not None:
            room = user_room(user.id)
            self._room(room).members[sid] = conn
            conn.rooms.add(room)
            if self.runtime.sessions.generation != generation:
                # A revocation landed while the token was being checked: check again.
                self._spawn(self._recheck_user(user.id))

    # ------------------------------------------------------------------ sign-in revocations

    def _on_user_invalidated(self, user_id: uuid.UUID) -> None:
        """A session of ``user_id`` was revoked or the account changed: re-check its sockets here."""
        room = self.rooms.get(user_room(user_id))
        if room is not None and room.members:
            self._spawn(self._recheck_user(user_id))

    async def _recheck_user(self, user_id: uuid.UUID) -> None:
        """Disconnect the user's sockets whose sign-in may no longer be used (``session_ended``)."""
        room = self.rooms.get(user_room(user_id))
        if room is None:
            return
        conns = [c for c in room.members.values() if c.session_id is not None and not c.closed]
        if not conns:
            return
        async with self.runtime.db.session(write=False) as session:
            ended = await service.ended_sessions(
                session=session, user_id=user_id, session_ids={c.session_id for c in conns if c.session_id}
            )
        for conn in conns:
            reason = ended.get(conn.session_id) if conn.session_id is not None else None
            if reason is not None and not conn.closed:
                await self._end_session(conn, reason)

    async def _end_session(self, conn: Conn, reason: Unauthorized) -> None:
        """Tell the socket why (``session_ended {code, message}``), then disconnect it."""
        log.info("realtime_session_ended", sid=conn.sid, user_id=str(conn.user_id), code=reason.code)
        SESSIONS_ENDED.labels(code=reason.code).inc()
        with suppress(Exception):
            await self.sio.emit("session_ended", {"code": reason.code, "message": reason.message}, to=conn.sid)
        await self.sio.disconnect(conn.sid)
        sock = self.sio.eio.sockets.get(conn.eio_sid)
        if sock is not None:
            # Close the transport too (after what is queued), whatever the client does.
            self._spawn(_bounded(sock.close(wait=True), "session_close", 5.0))

    async def _on_disconnect(self, sid: str, *_reason: Any) -> None:
        conn = self.conns.pop(sid, None)
        if conn is None:
            return
        conn.closed = True
        conn.link = None
        self._by_eio.pop(conn.eio_sid, None)
        CONNECTIONS.dec()
        sock = self.sio.eio.sockets.get(conn.eio_sid)
        if sock is not None and not sock.upgraded:
            # Answer a long-poll still waiting for packets now, not at the next ping.
            sock.queue.put_nowait(None)
        # A join still in progress cleans up after itself when it sees ``closed``.
        for name in list(conn.rooms):
            await self._leave(conn, name)

    def _room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name)
        if room.release is not None:
            room.release.cancel()
            room.release = None
        return room

    def _maybe_release(self, room: Room) -> None:
        """Keep an empty room's subscription a little (rejoins are common), then drop it."""
        if room.members or room.joining or room.release is not None:
            return
        loop = asyncio.get_running_loop()
        room.release = loop.call_later(self.settings.unsubscribe_grace_seconds, self._release, room.name)

    def _release(self, name: str) -> None:
        room = self.rooms.get(name)
        if room is None or room.members or room.joining:
            return
        del self.rooms[name]
        self._spawn(self._unsubscribe(name))

    async def _unsubscribe(self, name: str) -> None:
        if name not in self.rooms and self._started:  # not re-created meanwhile, not stopping
            await self.backend.unsubscribe(name)

    async def _leave(self, conn: Conn, name: str) -> None:
        conn.rooms.discard(name)
        room = self.rooms.get(name)
        if room is not None:
            room.members.pop(conn.sid, None)
            room.floors.pop(conn.sid, None)
            room.joining.pop(conn.sid, None)
            self._maybe_release(room)
        if name.startswith("stream:"):
            await self._remove_viewer(name[len("stream:") :], conn.member_key)

    # ------------------------------------------------------------------ presence

    async def _add_viewer(self, stream_id: str, member: str) -> None:
        local = self._viewers.setdefault(stream_id, {})
        local[member] = local.get(member, 0) + 1
        if local[member] == 1:
            await self.backend.presence_add(stream_id, member)
            self.viewer_counts.mark(stream_id)

    async def _remove_viewer(self, stream_id: str, member: str) -> None:
        local = self._viewers.get(stream_id)
        if local is None or member not in local:
            return
        local[member] -= 1
        if local[member] > 0:
            return
        del local[member]
        if not local:
            del self._viewers[stream_id]
        await self.backend.presence_remove(stream_id, member)
        self.viewer_counts.mark(stream_id)

    async def _announce_viewers(self, stream_id: str, count: int) -> None:
        await self.backend.publish(
            stream_room(stream_id), "viewer_count_changed", dumps({"stream_id": stream_id, "viewer_count": count})
        )
        from halobuzz.streams.service import set_viewer_count

        async with self.runtime.db.session() as session:
            changed = await set_viewer_count(session=session, stream_id=uuid.UUID(stream_id), viewer_count=count)
        now = time.monotonic()
        if changed and now - self._invalidated_at >= self.settings.count_interval_seconds:
            # The live listing sorts by viewers; at most one invalidation per interval.
            self._invalidated_at = now
            self.runtime.cache.invalidate(LIVE_CACHE_TAG)

    async def _like_count(self, stream_id: str) -> int:
        async with self.runtime.db.session(write=False) as session:
            return await service.get_like_count(session=session, stream_id=uuid.UUID(stream_id))

    async def _announce_likes(self, stream_id: str, count: int) -> None:
        await self.backend.publish(
            stream_room(stream_id), "stream_liked", dumps({"stream_id": stream_id, "like_count": count})
        )

    # ------------------------------------------------------------------ delivery

    async def _on_bus_message(self, name: str, event: str, epoch: str | None, seq: int | None, body: str) -> None:
        room = self.rooms.get(name)
        if room is None:
            return
        if event == "stream_started" and name.startswith("user:"):
            self._deliver_go_live(room, body)
            return
        if seq is not None and epoch is not None:
            if room.epoch == epoch:
                if seq <= room.last_seq:
                    return
                if seq > room.last_seq + 1 and room.last_seq > 0:
                    # Lost on the bus (e.g. a subscriber reconnect): fetch the gap from the log.
                    for missed in await self.backend.range(name, room.last_seq + 1, seq - 1):
                        missed_seq = int(orjson.loads(missed)["seq"])
                        room.last_seq = missed_seq
                        self._deliver(room, "new_message", epoch, missed_seq, missed)
            room.epoch, room.last_seq = epoch, seq
        self._deliver(room, event, epoch, seq, body)

    def _deliver(self, room: Room, event: str, epoch: str | None, seq: int | None, body: str) -> None:
        """Queue one event for the room's members; it goes out with the room's next flush.

        A flush runs on the next turn of the event loop, except right after a flush: then no
        sooner than the last flush took, after it ended. A quiet room's events go out at once;
        in a busy room (thousands of members, many messages a second) the events published
        meanwhile share the next flush, so the room costs one write per member per flush rather
        than per event, and the loop keeps at least half its time for reading what clients send.
        """
        room.outbox.append((event, epoch, seq, body))
        if len(room.outbox) > 1:
            return
        loop = asyncio.get_running_loop()
        wait = room.flushed_at + room.flush_cost - time.monotonic()
        if wait > 0:
            loop.call_later(wait, self._flush, room)
        else:
            loop.call_soon(self._flush, room)

    def _flush(self, room: Room) -> None:
        """Send the room's waiting events to every local member: each encoded once; for a
        member whose websocket is idle, all of them in one write, otherwise queued one by one.

        Under load, events published while the previous flush was writing share the next one,
        so a busy room costs one write per member per flush rather than per event."""
        started = time.monotonic()
        items, room.outbox = room.outbox, []
        try:
            self._write_out(room, items)
        except Exception:  # a callback of the loop: log it here, with the room
            log.exception("realtime_delivery_failed", room=room.name, events=len(items))
        room.flushed_at = time.monotonic()
        room.flush_cost = room.flushed_at - started

    def _write_out(self, room: Room, items: list[tuple[str, str | None, int | None, str]]) -> None:
        pkts = [event_frame(event, body) for event, _epoch, _seq, body in items]
        if room.joining:
            held: list[Held] = [(*item, pkt) for item, pkt in zip(items, pkts, strict=True)]
            for waiting in room.joining.values():
                waiting.extend(held)
        floors = room.floors
        wire: bytes | None = None
        max_buffer = self.settings.max_buffer_bytes_per_connection
        direct = queued = 0
        for sid, conn in room.members.items():
            send = pkts
            if floors:
                floor = floors.get(sid)
                if floor is not None:
                    send = self._above_floor(floors, sid, floor, items, pkts)
                    if not send:
                        continue
            link = conn.link
            if link is not None and not conn.dropped and link.writable(conn.sock):
                transport = link.transport
                if transport.get_write_buffer_size() > max_buffer:
                    self._drop(conn)
                    continue
                if send is pkts:
                    if wire is None:
                        wire = b"".join(websocket_frame(pkt.encode()) for pkt in pkts)
                    transport.write(wire)
                else:
                    transport.write(b"".join(websocket_frame(pkt.encode()) for pkt in send))
                direct += len(send)
                continue
            for pkt in send:
                self._push(conn, pkt)
            queued += len(send)
        if direct:
            DIRECT.inc(direct)
        if queued:
            QUEUED.inc(queued)

    @staticmethod
    def _above_floor(
        floors: dict[str, tuple[str, int]],
        sid: str,
        floor: tuple[str, int],
        items: list[tuple[str, str | None, int | None, str]],
        pkts: list[Any],
    ) -> list[Any]:
        """The events a member that has just joined still needs: its join ack already carried
        the room's messages up to ``floor`` (epoch, seq). The floor goes once a later one passes."""
        send = []
        current: tuple[str, int] | None = floor
        for (_event, epoch, seq, _body), pkt in zip(items, pkts, strict=True):
            if current is not None and seq is not None:
                if current[0] == epoch and seq <= current[1]:
                    continue
                del floors[sid]
                current = None
            send.append(pkt)
        return send if len(send) < len(pkts) else pkts

    def _deliver_go_live(self, room: Room, body: str) -> None:
        """A followed stream went live: tell the user's sockets that are not already in its room
        (those get it from the room), so each socket receives it once."""
        stream = stream_room(orjson.loads(body)["stream_id"])
        targets = [conn for conn in room.members.values() if stream not in conn.rooms]
        if not targets:
            return
        pkt = event_frame("stream_started", body)
        for conn in targets:
            self._push(conn, pkt)
        QUEUED.inc(len(targets))

    def _push(self, conn: Conn, pkt: Any) -> None:
        sock = conn.sock
        if sock is None or sock.closed or conn.dropped:
            return
        queue = sock.queue
        if queue.qsize() >= self.settings.max_queue_per_connection:
            self._drop(conn)
            return
        queue.put_nowait(pkt)

    def _drop(self, conn: Conn) -> None:
        """Disconnect a socket that cannot keep up, at once (its queued packets are discarded)."""
        if conn.dropped:
            return
        conn.dropped = True
        DROPPED.inc()
        log.info("realtime_slow_consumer_dropped", sid=conn.sid, user_id=str(conn.user_id) if conn.user_id else None)
        if conn.link is not None:
            conn.link.abort()
        sock = self.sio.eio.sockets.get(conn.eio_sid)
        if sock is not None:
            self._spawn(sock.close(wait=False, abort=True))

    def publish(self, room: str, event: str, payload: dict[str, Any]) -> None:
        """Emit ``event`` to every member of ``room`` on every instance (fire and forget)."""
        self._spawn(self.backend.publish(room, event, dumps(payload)))

    def emit_to_user(self, user_id: uuid.UUID, event: str, payload: dict[str, Any]) -> None:
        """Emit ``event`` to every socket of a user, on every instance."""
        self.publish(user_room(user_id), event, payload)

    # ------------------------------------------------------------------ ChatEvents, RecentMessages

    def message_deleted(self, *, stream_id: uuid.UUID, message_id: uuid.UUID) -> None:
        async def run() -> None:
            await self.backend.mark_deleted(stream_room(stream_id), str(message_id))
            await self.backend.publish(
                stream_room(stream_id), "message_deleted", dumps({"stream_id": stream_id, "message_id": message_id})
            )

        self._spawn(run())

    def user_timed_out(self, *, stream_id: uuid.UUID, user_id: uuid.UUID, until: datetime | None, banned: bool) -> None:
        self.publish(
            stream_room(stream_id),
            "user_timed_out",
            {"stream_id": stream_id, "user_id": user_id, "until": until, "banned": banned},
        )

    def chat_mode_changed(self, *, stream_id: uuid.UUID, modes: chat_service.ChatModes) -> None:
        self.publish(stream_room(stream_id), "chat_mode_changed", {"stream_id": stream_id, "modes": modes.as_dict()})

    async def find(self, *, stream_id: uuid.UUID, message_id: uuid.UUID) -> dict[str, Any] | None:
        body = await self.backend.find(stream_room(stream_id), str(message_id))
        return None if body is None else dict(orjson.loads(body))

    # ------------------------------------------------------------------ stream lifecycle

    def stream_started(self, *, stream_id: uuid.UUID, payload: dict[str, Any]) -> None:
        """Announce that a stream went live and record the viewers already waiting in its room."""

        body = dumps(payload)

        async def run() -> None:
            await self.backend.publish(stream_room(stream_id), "stream_started", body)
            await self.viewer_counts.reset(str(stream_id))
            await self.like_counts.reset(str(stream_id))

        self._spawn(run())
        self._spawn(self._tell_followers(stream_id, body))

    async def _tell_followers(self, stream_id: uuid.UUID, body: str) -> None:
        """``stream_started`` to the ``user:{id}`` rooms of the owner's followers, in batches.

        Followers are read with keyset pagination, ``FOLLOWER_BATCH`` per query, and each batch
        is published in one round trip; only instances with a follower's socket receive it.
        """
        async with self.runtime.db.session(write=False) as session:
            owner_id = await service.stream_owner(session=session, stream_id=stream_id)
        if owner_id is None:
            return
        after: service.FollowerKey | None = None
        while True:
            async with self.runtime.db.session(write=False) as session:
                page = await service.follower_page(session=session, user_id=owner_id, after=after, limit=FOLLOWER_BATCH)
            if page:
                await self.backend.publish_many([user_room(uid) for _, uid in page], "stream_started", body)
            if len(page) < FOLLOWER_BATCH:
                return
            after = page[-1]

    def stream_ended(self, *, stream_id: uuid.UUID, payload: dict[str, Any]) -> None:
        """Announce that a stream went off air."""
        self.publish(stream_room(stream_id), "stream_ended", payload)

    # ------------------------------------------------------------------ events

    def _handler(self, fn: Callable[[Conn, Any], Coroutine[Any, Any, Ack]]) -> Callable[..., Coroutine[Any, Any, Ack]]:
        async def handle(sid: str, *args: Any) -> Ack:
            conn = self.conns.get(sid)
            if conn is None:
                return {"ok": False, "error": {"code": "not_connected", "message": "connect first"}}
            try:
                return await fn(conn, args[0] if args else None)
            except DomainError as exc:
                return _error(exc)
            except ValidationError as exc:
                return _invalid(exc)
            except Exception:
                log.exception("realtime_handler_failed", handler=fn.__name__)
                return {"ok": False, "error": {"code": "internal_error", "message": "something went wrong"}}

        return handle

    def _require_user(self, conn: Conn) -> uuid.UUID:
        if conn.user_id is None:
            raise Unauthorized("connect with {token: <access token>} to do this", code="auth_required")
        return conn.user_id

    async def _join_stream(self, conn: Conn, payload: Any) -> Ack:
        data = JoinStreamIn.model_validate(payload)
        name = stream_room(data.stream_id)
        streams_joined = sum(1 for r in conn.rooms if r.startswith("stream:") and r != name)
        if streams_joined >= self.settings.max_rooms_per_connection:
            raise Forbidden(
                f"a connection may be in at most {self.settings.max_rooms_per_connection} streams",
                code="too_many_rooms",
            )
        async with self.runtime.db.session(write=False) as session:
            await service.require_stream(session=session, stream_id=data.stream_id)
        rejoin = name in conn.rooms
        room = self._room(name)
        room.members.pop(conn.sid, None)
        room.floors.pop(conn.sid, None)
        room.joining[conn.sid] = []
        try:
            await self.backend.subscribe(name)
            replay = await self.backend.replay(name, data.epoch, data.last_seq)
            messages = [orjson.loads(b) for b in replay.bodies]
            if not replay.recovered and len(messages) < self.settings.join_history:
                messages = await self._with_stored_history(data.stream_id, messages)
        except BaseException:
            room.joining.pop(conn.sid, None)
            if rejoin:
                conn.rooms.discard(name)
                await self._remove_viewer(str(data.stream_id), conn.member_key)
            self._maybe_release(room)
            raise
        held = room.joining.pop(conn.sid, [])
        if conn.closed:
            self._maybe_release(room)
            return {"ok": False, "error": {"code": "not_connected", "message": "the connection closed"}}
        epoch, last_seq = replay.epoch, replay.last_seq
        if room.epoch is None:
            room.epoch, room.last_seq = epoch, last_seq
        deliver_now = []
        for _event, held_epoch, seq, body, pkt in held:
            if seq is None or held_epoch != epoch:
                deliver_now.append(pkt)
            elif seq > last_seq:
                messages.append(orjson.loads(body))
                last_seq = seq
        for pkt in deliver_now:
            self._push(conn, pkt)
        room.members[conn.sid] = conn
        room.floors[conn.sid] = (epoch, last_seq)
        if not rejoin:
            conn.rooms.add(name)
            await self._add_viewer(str(data.stream_id), conn.member_key)
        return {"ok": True, "epoch": epoch, "last_seq": last_seq, "recovered": replay.recovered, "messages": messages}

    async def _with_stored_history(self, stream_id: uuid.UUID, recent: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The last messages from the table, merged with the recent window (which may be ahead)."""
        async with self.runtime.db.session(write=False) as session:
            stored = await chat_service.latest_messages(
                session=session, stream_id=stream_id, limit=self.settings.join_history
            )
        stored_out = orjson.loads(dumps(stored))
        ids = {m["id"] for m in recent}
        merged = [m for m in stored_out if m["id"] not in ids] + recent
        merged.sort(key=lambda m: (m["created_at"], m["id"]))
        return merged[-self.settings.join_history :]

    async def _leave_stream(self, conn: Conn, payload: Any) -> Ack:
        data = StreamRef.model_validate(payload)
        await self._leave(conn, stream_room(data.stream_id))
        return {"ok": True}

    async def _send_message(self, conn: Conn, payload: Any) -> Ack:
        user_id = self._require_user(conn)
        data = SendMessageIn.model_validate(payload)
        name = stream_room(data.stream_id)
        if name not in conn.rooms:
            raise Forbidden("join the stream (join_stream) before sending to it", code="not_joined")
        text = chat_service.normalize_text(data.text, max_length=self.chat_settings.max_message_length)
        context = await chat_service.check_send_db(
            db=self.runtime.db,
            stream_id=data.stream_id,
            user_id=user_id,
            text=text,
            subscription_check=self.subscription_check,
        )
        await chat_service.check_limits(kv=self.runtime.kv, context=context, settings=self.chat_settings)
        try:
            verdict = await self.moderation_hook(context)
        except Exception:
            log.exception("chat_moderation_hook_failed", stream_id=str(data.stream_id))
            CHAT_MESSAGES.labels(outcome="moderation_unavailable").inc()
            raise DomainError(
                "messages cannot be checked right now; try again shortly", code="moderation_unavailable"
            ) from None
        if verdict.action == "reject":
            CHAT_MESSAGES.labels(outcome="rejected").inc()
            raise Forbidden(verdict.reason or "this message is not allowed here", code="message_rejected")
        message_id = uuid7()
        now = utcnow()
        payload_out = chat_service.message_payload(
            message_id=message_id,
            stream_id=data.stream_id,
            user_id=user_id,
            username=context.username,
            text=text,
            created_at=now,
        )
        row = {
            "id": message_id,
            "stream_id": data.stream_id,
            "broadcast_id": context.broadcast_id,
            "user_id": user_id,
            "text": text,
            "epoch": "",
            "seq": 0,
            "status": MessageStatus.VISIBLE.value,
            "created_at": now,
            "deleted_at": None,
            "deleted_by_id": None,
        }
        if verdict.action == "hold":
            row["status"] = MessageStatus.HELD.value
            self.writer.add(row)
            CHAT_MESSAGES.labels(outcome="held").inc()
            return {"ok": True, "held": True, "reason": verdict.reason, "message": payload_out}
        prefix = dumps(payload_out)[:-1]
        appended = await self.backend.append(name, prefix, str(message_id))
        row["epoch"], row["seq"] = appended.epoch, appended.seq
        self.writer.add(row)
        CHAT_MESSAGES.labels(outcome="sent").inc()
        payload_out["epoch"], payload_out["seq"] = appended.epoch, appended.seq
        return {"ok": True, "message": payload_out}

    async def _send_gift(self, conn: Conn, payload: Any) -> Ack:
        """Send a gift to the stream: the HTTP route's path (``economy.batch``, batched with the
        other gifts waiting in this process); the room hears ``gift_received`` after the commit."""
        from halobuzz.economy import batch

        user_id = self._require_user(conn)
        data = SendGiftIn.model_validate(payload)
        if stream_room(data.stream_id) not in conn.rooms:
            raise Forbidden("join the stream (join_stream) before sending it gifts", code="not_joined")
        receipt = await batch.batcher_of(self.runtime).send(
            batch.GiftRequest(
                actor_id=user_id,
                stream_id=data.stream_id,
                gift_id=data.gift_id,
                quantity=data.quantity,
                idempotency_key=data.idempotency_key,
            )
        )
        return {
            "ok": True,
            "id": str(receipt.id),
            "gift": receipt.gift,
            "quantity": receipt.quantity,
            "coins_spent": receipt.coins_spent,
            "balance": receipt.balance,
        }

    async def _like_stream(self, conn: Conn, payload: Any) -> Ack:
        user_id = self._require_user(conn)
        data = StreamRef.model_validate(payload)
        if stream_room(data.stream_id) not in conn.rooms:
            raise Forbidden("join the stream (join_stream) before liking it", code="not_joined")
        per_second = self.chat_settings.likes_per_second
        allowed, _, wait = await self.runtime.kv.take(
            f"like:{data.stream_id}:{user_id}", max(1, int(per_second * 2)), 2.0
        )
        if not allowed:
            raise TooManyRequests(
                f"at most {per_second:g} likes per second", code="rate_limited", details={"retry_after": wait}
            )
        async with self.runtime.db.session() as session:
            count = await service.like_stream(session=session, stream_id=data.stream_id)
        self.like_counts.mark(str(data.stream_id))
        return {"ok": True, "like_count": count}
