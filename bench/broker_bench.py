"""Events per second through the broker transports vs the in-process hand-off, in one run.

Each path moves N event envelopes from a publisher to one consumer loop that acknowledges them
(the transport only: no database work). Redis and NATS must be running (REDIS_URL / NATS_URL).
Bounded: N messages per path (default 3000), well under a minute in total.

    .venv/bin/python bench/broker_bench.py [N]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from contextlib import suppress

from halobuzz.core.broker import Delivery, make_broker

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")


def envelope(i: int) -> dict[str, object]:
    return {
        "kind": "event",
        "event": {
            "id": str(uuid.uuid4()),
            "type": "gift.sent",
            "version": 1,
            "occurred_at": "2026-12-03T00:00:00Z",
            "actor_id": None,
            "data": {"i": i, "coins_spent": 5},
        },
    }


async def in_process(n: int) -> float:
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    done = asyncio.Event()
    seen = 0

    async def consume() -> None:
        nonlocal seen
        while True:
            await queue.get()
            seen += 1
            if seen == n:
                done.set()

    task = asyncio.create_task(consume())
    start = time.perf_counter()
    for i in range(n):
        await queue.put(envelope(i))
    await done.wait()
    elapsed = time.perf_counter() - start
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    return n / elapsed


async def through(url: str, n: int) -> float:
    broker = make_broker(url, stream=f"hbbench-{uuid.uuid4().hex[:8]}", claim_idle_seconds=30)
    done = asyncio.Event()
    seen = 0

    async def handle(msg: Delivery) -> None:
        nonlocal seen
        await msg.ack()
        seen += 1
        if seen == n:
            done.set()

    try:
        await broker.pending()  # connect and create the stream before timing
        task = asyncio.create_task(broker.consume(handle, concurrency=16))
        start = time.perf_counter()
        for i in range(n):
            await broker.publish(envelope(i))
        await asyncio.wait_for(done.wait(), timeout=60)
        elapsed = time.perf_counter() - start
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        return n / elapsed
    finally:
        await broker.delete()
        await broker.close()


async def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    print(f"{n} events per path (publish → consume → ack), one publisher, one consumer")
    print(f"in-process hand-off   {await in_process(n):>10,.0f} events/s")
    print(f"Redis Streams         {await through(REDIS_URL, n):>10,.0f} events/s")
    print(f"NATS JetStream        {await through(NATS_URL, n):>10,.0f} events/s")
    print(f"load average          {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
