"""Short-lived shared state: token buckets, counters, flags.

Redis when ``REDIS_URL`` is set (limits and counters then hold across instances); an in-process
store otherwise. Both expose the same few atomic operations.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import redis.asyncio as aioredis


class Store(Protocol):
    async def take(self, key: str, capacity: int, per_seconds: float) -> tuple[bool, int, float]:
        """Take one token from a bucket of ``capacity`` refilled over ``per_seconds``.

        Returns (allowed, tokens left, seconds until a token is available)."""
        ...

    async def incr(self, key: str, ttl_seconds: int) -> int:
        """Increment a counter that expires ``ttl_seconds`` after it was created."""
        ...

    async def get_int(self, key: str) -> int: ...

    async def delete(self, key: str) -> None: ...

    async def set(self, key: str, value: str, ttl_seconds: int) -> None: ...

    async def get(self, key: str) -> str | None: ...

    async def seen(self, key: str, member: str, window_seconds: int) -> int:
        """Record ``member`` as seen now in the set ``key``; the number of distinct members seen in
        the last ``window_seconds`` (an empty ``member`` only counts)."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """The in-process store of the embedded default (one process, so no coordination needed)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._values: dict[str, tuple[str, float]] = {}
        self._seen: dict[str, dict[str, float]] = {}
        self._ops = 0

    def _sweep(self) -> None:
        self._ops += 1
        if self._ops % 10_000:
            return
        now = time.monotonic()
        self._values = {k: v for k, v in self._values.items() if v[1] > now}
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}

    async def take(self, key: str, capacity: int, per_seconds: float) -> tuple[bool, int, float]:
        self._sweep()
        now = time.monotonic()
        rate = capacity / per_seconds
        tokens, ts = self._buckets.get(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - ts) * rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[key] = (tokens, now)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
        return allowed, int(tokens), wait

    async def incr(self, key: str, ttl_seconds: int) -> int:
        self._sweep()
        now = time.monotonic()
        value, exp = self._values.get(key, ("0", now + ttl_seconds))
        if exp <= now:
            value, exp = "0", now + ttl_seconds
        new = int(value) + 1
        self._values[key] = (str(new), exp)
        return new

    async def get(self, key: str) -> str | None:
        item = self._values.get(key)
        if item is None or item[1] <= time.monotonic():
            return None
        return item[0]

    async def get_int(self, key: str) -> int:
        value = await self.get(key)
        return int(value) if value else 0

    async def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self._values[key] = (value, time.monotonic() + ttl_seconds)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._buckets.pop(key, None)

    async def seen(self, key: str, member: str, window_seconds: int) -> int:
        now = time.monotonic()
        members = self._seen.setdefault(key, {})
        if member:
            members[member] = now
        for m in [m for m, at in members.items() if now - at > window_seconds]:
            del members[m]
        if not members:
            self._seen.pop(key, None)
        return len(members)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


# Token bucket in one round trip, timed by the Redis server's clock so instances never disagree.
_TAKE = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or cap
local ts = tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""

# Distinct members seen in a window: a sorted set scored by the server's clock.
_SEEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[2])
if ARGV[1] ~= '' then redis.call('ZADD', KEYS[1], now, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
return redis.call('ZCARD', KEYS[1])
"""

_INCR = """
local v = redis.call('INCR', KEYS[1])
if v == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return v
"""


class RedisStore:
    """The shared store when ``REDIS_URL`` is set; every key carries the configured prefix."""

    def __init__(self, url: str, prefix: str = "hb:") -> None:
        # At most 100 connections (redis-py's default); a burst beyond that (10,000 sockets
        # dropping at once each removing its presence entry) waits up to 20 s for a free
        # connection instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(url, decode_responses=True, max_connections=100, timeout=20)
        self.client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self.prefix = prefix
        self._take = self.client.register_script(_TAKE)
        self._incr = self.client.register_script(_INCR)
        self._seen = self.client.register_script(_SEEN)

    async def take(self, key: str, capacity: int, per_seconds: float) -> tuple[bool, int, float]:
        rate = capacity / per_seconds
        allowed, tokens_s = await self._take(keys=[self.prefix + key], args=[capacity, rate])
        tokens = float(tokens_s)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
        return bool(allowed), math.floor(tokens), wait

    async def incr(self, key: str, ttl_seconds: int) -> int:
        return int(await self._incr(keys=[self.prefix + key], args=[ttl_seconds]))

    async def get(self, key: str) -> str | None:
        value = await self.client.get(self.prefix + key)
        return str(value) if value is not None else None

    async def get_int(self, key: str) -> int:
        value = await self.get(key)
        return int(value) if value else 0

    async def set(self, key: str, value: str, ttl_seconds: int) -> None:
        await self.client.set(self.prefix + key, value, ex=ttl_seconds)

    async def delete(self, key: str) -> None:
        await self.client.delete(self.prefix + key)

    async def seen(self, key: str, member: str, window_seconds: int) -> int:
        return int(await self._seen(keys=[self.prefix + key], args=[member, window_seconds]))

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


def make_store(redis_url: str | None, prefix: str) -> Store:
    return RedisStore(redis_url, prefix) if redis_url else MemoryStore()
