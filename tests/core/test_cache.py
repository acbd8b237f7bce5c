"""The hot-read response cache: anonymous GETs only, invalidation by tag, single flight."""

from __future__ import annotations

import asyncio

from tests.conftest import client_for


async def test_concurrent_misses_build_the_response_once(app):
    calls = 0
    gate = asyncio.Event()

    @app.api.get("/api/v1/test-cached")
    async def cached_route() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await gate.wait()  # hold the first build until every request has arrived
        return {"calls": calls}

    app.runtime.cache.register("/api/v1/test-cached", "test")
    async with client_for(app) as c:
        requests = [asyncio.create_task(c.get("/api/v1/test-cached")) for _ in range(20)]
        while not app.runtime.cache._filling:
            await asyncio.sleep(0)
        for _ in range(200):  # let the other 19 reach the cache and wait on the first build
            await asyncio.sleep(0)
        gate.set()
        responses = await asyncio.gather(*requests)
        assert [r.status_code for r in responses] == [200] * 20
        assert {r.json()["calls"] for r in responses} == {1}
        assert calls == 1
        # Authenticated requests are never served from the cache.
        r = await c.get("/api/v1/test-cached", headers={"Authorization": "Bearer x"})
        assert r.json() == {"calls": 2}
        app.runtime.cache.invalidate("test")
        assert (await c.get("/api/v1/test-cached")).json() == {"calls": 3}
        assert (await c.get("/api/v1/test-cached")).json() == {"calls": 3}
