"""The message broker between the outbox relay, the scheduler and the workers (docs/events.md).

``BROKER_URL`` picks the transport: ``redis://…`` (``rediss://``) → Redis Streams, ``nats://…`` →
NATS JetStream. Without it nothing here is used: ``halobuzz serve`` delivers in-process.

Every message is a JSON object with a ``kind`` (``event`` | ``consumer`` | ``job``) handled by
:mod:`halobuzz.jobs.worker`. Delivery is at least once: a message is acknowledged only after its
handler returned; one a dead worker left unacknowledged is handed to another worker once it has
been idle ``JOBS_BROKER_CLAIM_IDLE_SECONDS`` (Redis ``XAUTOCLAIM``, JetStream ``ack_wait``).
Retries with a delay are published with ``publish(..., delay=…)``.

- Redis Streams: one stream ``<JOBS_BROKER_STREAM>:tasks`` with the consumer group ``workers``;
  workers read with ``XREADGROUP``, acknowledge with ``XACK`` (+ ``XDEL``) and take over idle
  pending entries with ``XAUTOCLAIM``. Delayed messages wait in the sorted set
  ``<stream>:delayed`` and are moved to the stream, atomically (a Lua script), when due.
- NATS JetStream: the stream ``<JOBS_BROKER_STREAM>`` on the subject ``<stream>.tasks``, a durable
  pull consumer ``workers`` with explicit acks; a delayed retry is a ``NAK`` with that delay.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import structlog

from halobuzz.core.tasks import cancel_and_wait

log = structlog.get_logger(__name__)

GROUP = "workers"

Handler = Callable[["Delivery"], Awaitable[None]]


@dataclass
class Delivery:
    """One received message; the handler calls ``ack`` or ``retry_later`` (else it is redelivered)."""

    body: dict[str, Any]
    ack: Callable[[], Awaitable[None]]
    retry_later: Callable[[dict[str, Any], float], Awaitable[None]]


def _done(running: set[asyncio.Task[None]], slots: asyncio.Semaphore, task: asyncio.Task[None]) -> None:
    running.discard(task)
    slots.release()


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Broker:
    """Publish messages and consume them as one member of the shared ``workers`` group."""

    url: str
    stream: str

    async def publish(self, body: dict[str, Any], *, delay: float = 0.0) -> None:
        raise NotImplementedError

    async def consume(self, handler: Handler, *, concurrency: int = 4) -> None:
        """Receive and hand messages to ``handler`` until cancelled."""
        raise NotImplementedError

    async def pending(self) -> int:
        """Messages not yet acknowledged: queued, delayed or being handled."""
        raise NotImplementedError

    async def delete(self) -> None:
        """Remove the stream and everything queued in it (tests, benchmarks)."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


def make_broker(url: str, *, stream: str = "halobuzz", claim_idle_seconds: float = 30.0) -> Broker:
    """The broker for ``BROKER_URL``; a clear error for an unknown scheme."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        return RedisStreamsBroker(url, stream=stream, claim_idle_seconds=claim_idle_seconds)
    if scheme in ("nats", "tls"):
        return JetStreamBroker(url, stream=stream, claim_idle_seconds=claim_idle_seconds)
    raise ValueError(f"BROKER_URL must start with redis:// or nats:// (got {scheme}://)")


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


# Move due entries of the delayed set to the stream; atomic, so a crash never loses or doubles one.
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('XADD', KEYS[2], '*', 'body', string.sub(member, 34))
end
return #due
"""


class RedisStreamsBroker(Broker):
    def __init__(self, url: str, *, stream: str, claim_idle_seconds: float) -> None:
        from redis.asyncio import Redis

        self.url = url
        self.stream = stream
        self.key = f"{stream}:tasks"
        self.delayed_key = f"{stream}:delayed"
        self.claim_idle_ms = max(1, int(claim_idle_seconds * 1000))
        self.redis = Redis.from_url(url)
        self._group_ready = False
        self._promote: Any = None

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        from redis.exceptions import ResponseError

        try:
            await self.redis.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def publish(self, body: dict[str, Any], *, delay: float = 0.0) -> None:
        data = _encode(body)
        if delay > 0:
            # A unique 33-character tag in front keeps equal bodies apart in the set.
            member = uuid.uuid4().hex + ":" + data.decode()
            await self.redis.zadd(self.delayed_key, {member: time.time() + delay})
        else:
            await self.redis.xadd(self.key, {"body": data})

    async def promote_due(self) -> int:
        if self._promote is None:
            self._promote = self.redis.register_script(_PROMOTE)
        return int(await self._promote(keys=[self.delayed_key, self.key], args=[time.time(), 100]))

    async def consume(self, handler: Handler, *, concurrency: int = 4) -> None:
        await self._ensure_group()
        me = consumer_name()
        slots = asyncio.Semaphore(concurrency)
        running: set[asyncio.Task[None]] = set()
        last_claim = 0.0
        try:
            while True:
                await self.promote_due()
                entries: list[tuple[bytes, dict[bytes, bytes]]] = []
                now = time.monotonic()
                if now - last_claim >= min(5.0, self.claim_idle_ms / 2000):
                    last_claim = now
                    # Entries another (dead) worker read but never acknowledged.
                    claimed: Any = await self.redis.xautoclaim(
                        self.key, GROUP, me, min_idle_time=self.claim_idle_ms, start_id="0-0", count=concurrency
                    )
                    entries.extend(e for e in claimed[1] if e and e[1])
                    for entry_id in claimed[2] if len(claimed) > 2 else []:
                        await self.redis.xack(self.key, GROUP, entry_id)  # deleted meanwhile
                if not entries:
                    got: Any = await self.redis.xreadgroup(GROUP, me, {self.key: ">"}, count=concurrency, block=200)
                    for _stream, items in got or []:
                        entries.extend(items)
                for entry_id, fields in entries:
                    await slots.acquire()
                    task = asyncio.create_task(self._handle(handler, me, entry_id, fields))
                    running.add(task)
                    task.add_done_callback(functools.partial(_done, running, slots))
        finally:
            await cancel_and_wait(list(running))

    async def _handle(self, handler: Handler, me: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        async def ack() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.key, GROUP, entry_id)
                pipe.xdel(self.key, entry_id)
                await pipe.execute()

        async def retry_later(body: dict[str, Any], delay: float) -> None:
            await self.publish(body, delay=delay)
            await ack()

        try:
            body = json.loads(fields[b"body"])
        except (KeyError, ValueError):
            log.warning("broker_bad_message", entry_id=entry_id.decode())
            await ack()
            return

        async def keep_claimed() -> None:
            # A live worker's long job is not taken over: re-claiming resets the entry's idle time.
            while True:
                await asyncio.sleep(self.claim_idle_ms / 3000)
                await self.redis.xclaim(self.key, GROUP, me, 0, [entry_id], justid=True)

        heartbeat = asyncio.create_task(keep_claimed())
        try:
            await handler(Delivery(body, ack, retry_later))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("broker_handler_failed", entry_id=entry_id.decode())
        finally:
            heartbeat.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await heartbeat

    async def pending(self) -> int:
        # Acknowledged entries are deleted, so the stream holds only queued and in-flight ones.
        return int(await self.redis.xlen(self.key)) + int(await self.redis.zcard(self.delayed_key))

    async def delete(self) -> None:
        await self.redis.delete(self.key, self.delayed_key)
        self._group_ready = False

    async def close(self) -> None:
        await self.redis.aclose()


class JetStreamBroker(Broker):
    def __init__(self, url: str, *, stream: str, claim_idle_seconds: float) -> None:
        self.url = url
        self.stream = stream
        self.subject = f"{stream}.tasks"
        self.ack_wait = max(1.0, claim_idle_seconds)
        self._nc: Any = None
        self._js: Any = None
        self._lock = asyncio.Lock()

    async def _jetstream(self) -> Any:
        async with self._lock:
            if self._js is None:
                import nats
                from nats.js.api import RetentionPolicy, StreamConfig

                self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=-1)
                js = self._nc.jetstream()
                config = StreamConfig(name=self.stream, subjects=[self.subject], retention=RetentionPolicy.WORK_QUEUE)
                try:
                    await js.add_stream(config)
                except Exception:
                    await js.update_stream(config)
                self._js = js
            return self._js

    async def publish(self, body: dict[str, Any], *, delay: float = 0.0) -> None:
        js = await self._jetstream()
        if delay > 0:
            body = {**body, "not_before": time.time() + delay}
        await js.publish(self.subject, _encode(body))

    async def consume(self, handler: Handler, *, concurrency: int = 4) -> None:
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig

        js = await self._jetstream()
        sub = await js.pull_subscribe(
            self.subject,
            durable=GROUP,
            stream=self.stream,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait, max_deliver=-1),
        )
        slots = asyncio.Semaphore(concurrency)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                free = concurrency - len(running)
                if free <= 0:
                    await slots.acquire()
                    slots.release()
                    continue
                try:
                    msgs = await sub.fetch(free, timeout=1.0)
                except (NatsTimeout, TimeoutError):  # nothing queued within the wait
                    continue
                for msg in msgs:
                    await slots.acquire()
                    task = asyncio.create_task(self._handle(handler, msg))
                    running.add(task)
                    task.add_done_callback(functools.partial(_done, running, slots))
        finally:
            await cancel_and_wait(list(running))
            with suppress(Exception):
                await sub.unsubscribe()

    async def _handle(self, handler: Handler, msg: Any) -> None:
        js = await self._jetstream()

        async def ack() -> None:
            await msg.ack()

        async def retry_later(body: dict[str, Any], delay: float) -> None:
            # JetStream has no delayed publish: the new message carries its due time, and a worker
            # that receives it early NAKs it with the remaining delay (the server holds it back).
            await js.publish(self.subject, _encode({**body, "not_before": time.time() + delay}))
            await msg.ack()

        try:
            original = json.loads(msg.data)
        except ValueError:
            log.warning("broker_bad_message", subject=msg.subject)
            await msg.ack()
            return
        wait = float(original.pop("not_before", 0.0)) - time.time()
        if wait > 0:
            await msg.nak(delay=wait)
            return

        async def keep_claimed() -> None:
            # A live worker's long job is not redelivered: "in progress" restarts the ack wait.
            while True:
                await asyncio.sleep(self.ack_wait / 3)
                await msg.in_progress()

        heartbeat = asyncio.create_task(keep_claimed())
        try:
            await handler(Delivery(original, ack, retry_later))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("broker_handler_failed", subject=msg.subject)
        finally:
            heartbeat.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await heartbeat

    async def pending(self) -> int:
        # A work-queue stream drops a message once it is acknowledged.
        js = await self._jetstream()
        info = await js.stream_info(self.stream)
        return int(info.state.messages)

    async def delete(self) -> None:
        js = await self._jetstream()
        with suppress(Exception):
            await js.delete_stream(self.stream)
        self._js = None
        if self._nc is not None:
            await self._nc.close()
            self._nc = None

    async def close(self) -> None:
        if self._nc is not None:
            with suppress(Exception):
                await self._nc.drain()
            self._nc, self._js = None, None
