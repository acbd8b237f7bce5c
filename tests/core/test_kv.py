"""The Redis-backed store under a burst larger than its connection pool."""

from __future__ import annotations

import asyncio
import uuid

from halobuzz.core.kv import RedisStore
from tests.conftest import TEST_REDIS_URL


async def test_a_burst_beyond_the_pool_waits_for_connections_instead_of_failing() -> None:
    prefix = f"hbt:{uuid.uuid4().hex[:12]}:"
    store = RedisStore(TEST_REDIS_URL or "redis://127.0.0.1:6379/0", prefix)
    try:
        # 1,000 concurrent commands over at most 100 connections: each one gets its turn.
        counts = await asyncio.gather(*(store.incr(f"burst:{i % 10}", 60) for i in range(1000)))
        assert sorted(counts)[-1] == 100
        assert sum(1 for c in counts if c == 1) == 10
        assert store.client.connection_pool.max_connections == 100
    finally:
        keys = [k async for k in store.client.scan_iter(match=prefix + "*")]
        if keys:
            await store.client.delete(*keys)
        await store.close()
