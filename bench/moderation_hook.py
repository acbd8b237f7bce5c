"""Per-message cost of the chat moderation hook in-process (docs/benchmarks.md, "Chat moderation hook").

Run: PYTHONPATH=. .venv/bin/python bench/moderation_hook.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

from tests.ai.eval_data import EVAL_SET

from halobuzz.ai.hook import make_chat_hook
from halobuzz.ai.text import Policy, TextModerator
from halobuzz.chat.service import MessageContext


async def main() -> None:
    hook = make_chat_hook(TextModerator.default(), Policy())
    ids = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    texts = [text for _, text, _ in EVAL_SET] + ["a normal chat message of ordinary length, nothing odd " * 3]
    contexts = [MessageContext(ids[0], ids[1], None, ids[2], "bench", t, False) for t in texts]
    samples: list[float] = []
    for _ in range(50):
        for context in contexts:
            start = time.perf_counter_ns()
            await hook(context)
            samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    p50 = statistics.median(samples)
    p95 = samples[int(len(samples) * 0.95)]
    p99 = samples[int(len(samples) * 0.99)]
    print(f"messages={len(samples)} p50={p50:.1f}us p95={p95:.1f}us p99={p99:.1f}us max={samples[-1]:.1f}us")


if __name__ == "__main__":
    asyncio.run(main())
