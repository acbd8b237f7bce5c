"""What the gateway shares between instances: room logs (epoch, seq, recent window), room
pub/sub, presence and throttled-emit claims.

``MemoryBackend`` serves one process (the embedded default); ``RedisBackend`` lets several
instances share rooms. Both keep the same semantics:

* A room's log has an *epoch* (random; it changes when the log is lost: a new process, a flushed
  Redis) and a *seq* that grows by one per message. Appending assigns the next seq, stores the
  message in the recent window (at most ``window`` messages, dropped after ``max_age`` seconds
  without messages) and publishes it, in one atomic step (a Lua script on Redis), so every
  instance sees a room's messages in seq order and two instances never share a seq.
* Pub/sub is per room: an instance subscribes to the channels of rooms it has members in, and
  never receives (or decodes) the others.
* Presence: per stream, the members (a user, or an anonymous connection) each instance holds,
  refreshed by heartbeats; a dead instance's entries stop counting after ``presence_ttl``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import orjson
import redis.asyncio as aioredis
import structlog

from halobuzz.core.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

# (room, event, epoch, seq, body): epoch and seq only for messages placed in the room's log.
OnMessage = Callable[[str, str, str | None, int | None, str], Awaitable[None]]
Claim = Literal["emit", "same", "busy"]


def new_epoch() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Appended:
    epoch: str
    seq: int
    body: str


@dataclass(slots=True)
class Replay:
    epoch: str
    last_seq: int
    recovered: bool
    # Message bodies (JSON), oldest first, deleted ones left out.
    bodies: list[str] = field(default_factory=list)


_ID_START = len('{"id":"')


def _body_prefix_id(message_id: str) -> str:
    return '{"id":"' + message_id + '"'


def body_id(body: str) -> str:
    """The message id of a message body (bodies start with their id)."""
    return body[_ID_START : _ID_START + 36]


def _age_seconds(body: str) -> float:
    created = orjson.loads(body).get("created_at")
    if not isinstance(created, str):
        return 0.0
    return time.time() - datetime.fromisoformat(created).timestamp()


def _decide(
    *,
    epoch: str,
    seq: int,
    client_epoch: str | None,
    last_seq: int | None,
    candidates: list[str] | None,
    max_gap: int,
    max_age: float,
) -> bool:
    """Whether the client at (client_epoch, last_seq) can be given exactly what it missed."""
    if client_epoch != epoch or last_seq is None or last_seq > seq or seq - last_seq > max_gap:
        return False
    if candidates is None or len(candidates) != seq - last_seq:
        return False
    return not candidates or _age_seconds(candidates[0]) <= max_age


class Backend(Protocol):
    # room log
    async def append(self, room: str, prefix: str, message_id: str) -> Appended: ...

    async def replay(self, room: str, epoch: str | None, last_seq: int | None) -> Replay: ...

    async def range(self, room: str, first: int, last: int) -> list[str]: ...

    async def find(self, room: str, message_id: str) -> str | None: ...

    async def mark_deleted(self, room: str, message_id: str) -> None: ...

    # pub/sub
    async def start(self, on_message: OnMessage) -> None: ...

    async def stop(self) -> None: ...

    async def subscribe(self, room: str) -> None: ...

    async def unsubscribe(self, room: str) -> None: ...

    async def publish(self, room: str, event: str, body: str) -> None: ...

    async def publish_many(self, rooms: list[str], event: str, body: str) -> None: ...

    async def publish_each(self, event: str, items: list[tuple[str, str]]) -> None: ...

    # presence
    async def presence_add(self, stream_id: str, member: str) -> None: ...

    async def presence_remove(self, stream_id: str, member: str) -> None: ...

    async def presence_count(self, stream_id: str) -> int: ...

    async def presence_heartbeat(self, local: dict[str, Iterable[str]]) -> None: ...

    async def presence_streams(self) -> list[str]: ...

    # throttled emits shared by instances
    async def claim_emit(self, kind: str, stream_id: str, value: int, interval_ms: int) -> Claim: ...

    async def forget_emit(self, kind: str, stream_id: str) -> None: ...

    async def try_lock(self, name: str, ttl_ms: int) -> bool: ...


# ----------------------------------------------------------------------------- in process

# A room's epoch and seq are kept this long after its last message.
_LOG_TTL_SECONDS = 86400


class _Log:
    __slots__ = ("deleted", "epoch", "seq", "touched", "window")

    def __init__(self, window: int) -> None:
        self.epoch = new_epoch()
        self.seq = 0
        self.window: deque[tuple[int, float, str, str]] = deque(maxlen=window)  # seq, at, id, body
        self.deleted: set[str] = set()
        self.touched = time.monotonic()


class MemoryBackend:
    """One process: logs, presence and claims in memory; publishing delivers locally at once."""

    def __init__(self, *, window: int, max_age: float, history: int) -> None:
        self.window = window
        self.max_age = max_age
        self.history = history
        self._logs: dict[str, _Log] = {}
        self._presence: dict[str, set[str]] = {}
        self._last: dict[tuple[str, str], int] = {}
        self._on_message: OnMessage | None = None
        self._uses = 0

    def _log(self, room: str) -> _Log:
        now = time.monotonic()
        self._uses += 1
        if self._uses % 10_000 == 0:  # forget rooms without messages for a day (as Redis does)
            self._logs = {r: e for r, e in self._logs.items() if now - e.touched < _LOG_TTL_SECONDS}
        entry = self._logs.get(room)
        if entry is None:
            entry = self._logs[room] = _Log(self.window)
        if now - entry.touched > self.max_age:
            entry.window.clear()
            entry.deleted.clear()
        entry.touched = now
        return entry

    async def append(self, room: str, prefix: str, message_id: str) -> Appended:
        entry = self._log(room)
        entry.seq += 1
        body = f'{prefix},"epoch":"{entry.epoch}","seq":{entry.seq}}}'
        entry.window.append((entry.seq, time.monotonic(), message_id, body))
        assert self._on_message is not None
        await self._on_message(room, "new_message", entry.epoch, entry.seq, body)
        return Appended(entry.epoch, entry.seq, body)

    async def replay(self, room: str, epoch: str | None, last_seq: int | None) -> Replay:
        entry = self._log(room)
        now = time.monotonic()
        fresh = [w for w in entry.window if now - w[1] <= self.max_age]
        candidates = None
        if last_seq is not None and last_seq >= 0:
            candidates = [w[3] for w in fresh if w[0] > last_seq]
        recovered = _decide(
            epoch=entry.epoch,
            seq=entry.seq,
            client_epoch=epoch,
            last_seq=last_seq,
            candidates=candidates,
            max_gap=self.window,
            max_age=self.max_age,
        )
        chosen = [w for w in fresh if w[0] > (last_seq or 0)] if recovered else fresh[-self.history :]
        bodies = [w[3] for w in chosen if w[2] not in entry.deleted]
        return Replay(entry.epoch, entry.seq, recovered, bodies)

    async def range(self, room: str, first: int, last: int) -> list[str]:
        entry = self._logs.get(room)
        return [] if entry is None else [w[3] for w in entry.window if first <= w[0] <= last]

    async def find(self, room: str, message_id: str) -> str | None:
        entry = self._logs.get(room)
        if entry is not None:
            for w in entry.window:
                if w[2] == message_id:
                    return w[3]
        return None

    async def mark_deleted(self, room: str, message_id: str) -> None:
        self._log(room).deleted.add(message_id)

    async def start(self, on_message: OnMessage) -> None:
        self._on_message = on_message

    async def stop(self) -> None:
        return None

    async def subscribe(self, room: str) -> None:
        return None

    async def unsubscribe(self, room: str) -> None:
        return None

    async def publish(self, room: str, event: str, body: str) -> None:
        assert self._on_message is not None
        await self._on_message(room, event, None, None, body)

    async def publish_many(self, rooms: list[str], event: str, body: str) -> None:
        assert self._on_message is not None
        for room in rooms:
            await self._on_message(room, event, None, None, body)

    async def publish_each(self, event: str, items: list[tuple[str, str]]) -> None:
        assert self._on_message is not None
        for room, body in items:
            await self._on_message(room, event, None, None, body)

    async def presence_add(self, stream_id: str, member: str) -> None:
        self._presence.setdefault(stream_id, set()).add(member)

    async def presence_remove(self, stream_id: str, member: str) -> None:
        members = self._presence.get(stream_id)
        if members is not None:
            members.discard(member)
            if not members:
                del self._presence[stream_id]

    async def presence_count(self, stream_id: str) -> int:
        return len(self._presence.get(stream_id, ()))

    async def presence_heartbeat(self, local: dict[str, Iterable[str]]) -> None:
        return None

    async def presence_streams(self) -> list[str]:
        return list(self._presence)

    async def claim_emit(self, kind: str, stream_id: str, value: int, interval_ms: int) -> Claim:
        key = (kind, stream_id)
        if self._last.get(key) == value:
            return "same"
        self._last[key] = value
        return "emit"

    async def forget_emit(self, kind: str, stream_id: str) -> None:
        self._last.pop((kind, stream_id), None)

    async def try_lock(self, name: str, ttl_ms: int) -> bool:
        return True


# ----------------------------------------------------------------------------- Redis

_APPEND = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('DEL', KEYS[2])
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local body = ARGV[2] .. ',"epoch":"' .. epoch .. '","seq":' .. seq .. '}'
redis.call('ZADD', KEYS[2], seq, body)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('PUBLISH', KEYS[3], 'new_message\\n' .. epoch .. '\\n' .. seq .. '\\n' .. body)
return {epoch, seq}
"""

_REPLAY = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  redis.call('DEL', KEYS[2])
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local deleted = redis.call('SMEMBERS', KEYS[3])
local last = tonumber(ARGV[3])
if ARGV[2] == epoch and last >= 0 and last <= seq and seq - last <= tonumber(ARGV[4]) then
  return {epoch, seq, 1, deleted, redis.call('ZRANGEBYSCORE', KEYS[2], last + 1, seq)}
end
return {epoch, seq, 0, deleted, redis.call('ZRANGE', KEYS[2], -tonumber(ARGV[5]), -1)}
"""

_PRESENCE_ADD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 4))
redis.call('SADD', KEYS[2], ARGV[2])
return 1
"""

_PRESENCE_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
if #members == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
  return 0
end
local seen = {}
local n = 0
for _, m in ipairs(members) do
  local key = string.sub(m, (string.find(m, '|', 1, true) or 0) + 1)
  if not seen[key] then
    seen[key] = true
    n = n + 1
  end
end
return n
"""

_CLAIM = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then return -1 end
if redis.call('GET', KEYS[2]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', 86400)
return 1
"""


# ARGV: channel prefix, message header, then room, body pairs; PUBLISH to a channel nobody is
# subscribed to costs the server almost nothing.
_PUBLISH_EACH = """
local delivered = 0
for i = 3, #ARGV, 2 do
  delivered = delivered + redis.call('PUBLISH', ARGV[1] .. ARGV[i], ARGV[2] .. ARGV[i + 1])
end
return delivered
"""

# ARGV: channel prefix, message, then the rooms.
_PUBLISH_MANY = """
local delivered = 0
for i = 3, #ARGV do
  delivered = delivered + redis.call('PUBLISH', ARGV[1] .. ARGV[i], ARGV[2])
end
return delivered
"""


class RedisBackend:
    """Several instances over Redis: Lua scripts for atomic appends, a pub/sub channel per room."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        instance_id: str,
        window: int,
        max_age: float,
        history: int,
        presence_ttl: float,
    ) -> None:
        self.client = client
        self.prefix = prefix + "rt:"
        self.instance_id = instance_id
        self.window = window
        self.max_age = max_age
        self.history = history
        self.presence_ttl = presence_ttl
        self._append = client.register_script(_APPEND)
        self._replay = client.register_script(_REPLAY)
        self._presence_add = client.register_script(_PRESENCE_ADD)
        self._presence_count = client.register_script(_PRESENCE_COUNT)
        self._claim = client.register_script(_CLAIM)
        self._publish_each = client.register_script(_PUBLISH_EACH)
        self._publish_many = client.register_script(_PUBLISH_MANY)
        self._channel_prefix = self.prefix + "ch:"
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._on_message: OnMessage | None = None
        self._subscribed: set[str] = set()
        self._pending: dict[str, asyncio.Future[None]] = {}

    # keys: the room in a hash tag keeps a room's keys in one cluster slot
    def _key(self, room: str, kind: str) -> str:
        return f"{self.prefix}{{{room}}}:{kind}"

    def _channel(self, room: str) -> str:
        return self._channel_prefix + room

    async def append(self, room: str, prefix: str, message_id: str) -> Appended:
        epoch, seq = await self._append(
            keys=[self._key(room, "log"), self._key(room, "win"), self._channel(room)],
            args=[new_epoch(), prefix, self.window, _LOG_TTL_SECONDS, int(self.max_age)],
        )
        return Appended(str(epoch), int(seq), f'{prefix},"epoch":"{epoch}","seq":{int(seq)}}}')

    async def replay(self, room: str, epoch: str | None, last_seq: int | None) -> Replay:
        keys = [self._key(room, "log"), self._key(room, "win"), self._key(room, "del")]
        current, seq_raw, mode, deleted_ids, entries = await self._replay(
            keys=keys,
            args=[
                new_epoch(),
                epoch or "",
                -1 if last_seq is None else last_seq,
                self.window,
                self.history,
                _LOG_TTL_SECONDS,
            ],
        )
        current, seq = str(current), int(seq_raw)
        bodies = [str(e) for e in entries]
        recovered = int(mode) == 1 and _decide(
            epoch=current,
            seq=seq,
            client_epoch=epoch,
            last_seq=last_seq,
            candidates=bodies,
            max_gap=self.window,
            max_age=self.max_age,
        )
        if int(mode) == 1 and not recovered:
            bodies = [str(e) for e in await self.client.zrange(keys[1], -self.history, -1)]
        deleted = {str(d) for d in deleted_ids}
        if deleted:
            bodies = [b for b in bodies if body_id(b) not in deleted]
        return Replay(current, seq, recovered, bodies)

    async def range(self, room: str, first: int, last: int) -> list[str]:
        return [str(b) for b in await self.client.zrangebyscore(self._key(room, "win"), first, last)]

    async def find(self, room: str, message_id: str) -> str | None:
        head = _body_prefix_id(message_id)
        for body in await self.client.zrange(self._key(room, "win"), 0, -1):
            if str(body).startswith(head):
                return str(body)
        return None

    async def mark_deleted(self, room: str, message_id: str) -> None:
        key = self._key(room, "del")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(key, message_id)
            pipe.expire(key, int(self.max_age))
            await pipe.execute()

    # pub/sub ---------------------------------------------------------------

    async def start(self, on_message: OnMessage) -> None:
        self._on_message = on_message
        self._pubsub = self.client.pubsub()
        # Subscribing happens in the reader, which retries: the process starts even while Redis
        # is unreachable (rooms then fail to join until it is back).
        self._reader = asyncio.create_task(self._read(), name="realtime-redis-reader")

    async def stop(self) -> None:
        await cancel_and_wait([self._reader])
        self._reader = None
        if self._pubsub is not None:
            with suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None

    async def _read(self) -> None:
        control = f"{self.prefix}instance:{self.instance_id}"
        while True:
            try:
                if not self._pubsub.subscribed:
                    # A channel of our own keeps the connection subscribed (and listen() running)
                    # while no room has members here.
                    await self._pubsub.subscribe(control)
                async for message in self._pubsub.listen():
                    kind = message.get("type")
                    channel = str(message.get("channel"))
                    if kind == "message":
                        await self._dispatch(channel, str(message["data"]))
                    elif kind == "subscribe":
                        waiter = self._pending.pop(channel, None)
                        if waiter is not None and not waiter.done():
                            waiter.set_result(None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dropped subscriber (e.g. output buffer limit): reconnect
                log.warning("realtime_subscriber_reconnecting", error=str(exc))
                await asyncio.sleep(1.0)

    async def _dispatch(self, channel: str, data: str) -> None:
        if not channel.startswith(self._channel_prefix) or self._on_message is None:
            return
        room = channel[len(self._channel_prefix) :]
        event, epoch, seq, body = data.split("\n", 3)
        try:
            await self._on_message(room, event, epoch or None, int(seq) if seq else None, body)
        except Exception:
            log.exception("realtime_delivery_failed", room=room, event_name=event)

    async def subscribe(self, room: str) -> None:
        channel = self._channel(room)
        if channel in self._subscribed:
            return
        waiter = self._pending.get(channel)
        if waiter is None:
            waiter = self._pending[channel] = asyncio.get_running_loop().create_future()
            await self._pubsub.subscribe(channel)
        await asyncio.wait_for(asyncio.shield(waiter), timeout=10)
        self._subscribed.add(channel)

    async def unsubscribe(self, room: str) -> None:
        channel = self._channel(room)
        if channel in self._subscribed:
            self._subscribed.discard(channel)
            await self._pubsub.unsubscribe(channel)

    async def publish(self, room: str, event: str, body: str) -> None:
        await self.client.publish(self._channel(room), f"{event}\n\n\n{body}")

    async def publish_many(self, rooms: list[str], event: str, body: str) -> None:
        """Publish one event to many rooms: one script call per 1,000 rooms (one reply each, where
        a pipeline would parse a reply per room)."""
        data = f"{event}\n\n\n{body}"
        for start in range(0, len(rooms), 1000):
            await self._publish_many(keys=[], args=[self._channel_prefix, data, *rooms[start : start + 1000]])

    async def publish_each(self, event: str, items: list[tuple[str, str]]) -> None:
        """Publish one event with a body of its own to each room: one script call per 1,000 rooms
        (one command and one integer reply instead of a reply per room, as a pipeline would)."""
        header = f"{event}\n\n\n"
        for start in range(0, len(items), 1000):
            args: list[str] = [self._channel_prefix, header]
            for room, body in items[start : start + 1000]:
                args.append(room)
                args.append(body)
            await self._publish_each(keys=[], args=args)

    # presence --------------------------------------------------------------

    def _member(self, member: str) -> str:
        return f"{self.instance_id}|{member}"

    async def presence_add(self, stream_id: str, member: str) -> None:
        await self._presence_add(
            keys=[self._key(f"viewers:{stream_id}", "z"), self.prefix + "viewer-streams"],
            args=[self.presence_ttl, stream_id, self._member(member)],
        )

    async def presence_remove(self, stream_id: str, member: str) -> None:
        await self.client.zrem(self._key(f"viewers:{stream_id}", "z"), self._member(member))

    async def presence_count(self, stream_id: str) -> int:
        return int(
            await self._presence_count(
                keys=[self._key(f"viewers:{stream_id}", "z"), self.prefix + "viewer-streams"],
                args=[self.presence_ttl, stream_id],
            )
        )

    async def presence_heartbeat(self, local: dict[str, Iterable[str]]) -> None:
        for stream_id, members in local.items():
            names = [self._member(m) for m in members]
            for i in range(0, len(names), 1000):
                await self._presence_add(
                    keys=[self._key(f"viewers:{stream_id}", "z"), self.prefix + "viewer-streams"],
                    args=[self.presence_ttl, stream_id, *names[i : i + 1000]],
                )

    async def presence_streams(self) -> list[str]:
        return [str(s) for s in await self.client.smembers(self.prefix + "viewer-streams")]

    async def claim_emit(self, kind: str, stream_id: str, value: int, interval_ms: int) -> Claim:
        result = int(
            await self._claim(
                keys=[self._key(f"{kind}:{stream_id}", "lock"), self._key(f"{kind}:{stream_id}", "last")],
                args=[value, interval_ms],
            )
        )
        return "busy" if result < 0 else ("same" if result == 0 else "emit")

    async def forget_emit(self, kind: str, stream_id: str) -> None:
        await self.client.delete(self._key(f"{kind}:{stream_id}", "last"))

    async def try_lock(self, name: str, ttl_ms: int) -> bool:
        return bool(await self.client.set(self.prefix + "lock:" + name, self.instance_id, nx=True, px=ttl_ms))
