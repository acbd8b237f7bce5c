"""Per-message cost of the chat moderation hook in-process (docs/benchmarks.md, "Chat moderation hook").

Measured in one run, on the same messages: the no-op hook (the reference), the hook as installed
(word lists from the packages, the stream's region rule set, 50 channel blocked terms, reputation
rules; the channel lookup is a cache hit, as it is for all but one message per stream every 5 s),
and — for reference only, it is not on the chat path — sentiment of the same messages.

Run: PYTHONPATH=. .venv/bin/python bench/moderation_hook.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from tests.ai.eval_data import EVAL_SET

from halobuzz.ai import sentiment
from halobuzz.ai.hook import ChannelInfo, make_chat_hook
from halobuzz.ai.text import Policy, TextModerator
from halobuzz.chat.service import MessageContext, allow_all

ROUNDS = 50


def stats(samples: list[float]) -> tuple[float, float, float]:
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)], samples[int(len(samples) * 0.99)]


async def measure(fn: Callable[[MessageContext], Awaitable[object]], contexts: list[MessageContext]) -> list[float]:
    out: list[float] = []
    for _ in range(ROUNDS):
        for context in contexts:
            start = time.perf_counter_ns()
            await fn(context)
            out.append((time.perf_counter_ns() - start) / 1000)
    return out


async def main() -> None:
    terms = (*(f"rivalchannel{i}" for i in range(49)), "free coins")
    info = ChannelInfo("np", terms)

    async def channel(_stream_id: uuid.UUID) -> ChannelInfo:
        return info

    hook = make_chat_hook(TextModerator.default(), Policy(), channel=channel)
    ids = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    texts = [*(text for _, text, _ in EVAL_SET), "a normal chat message of ordinary length, nothing odd " * 3]
    contexts = [MessageContext(ids[0], ids[1], None, ids[2], "bench", t, False, reputation=80) for t in texts]

    async def feel(context: MessageContext) -> object:
        return sentiment.analyze(context.text)

    await measure(hook, contexts[:20])  # warm up
    base = stats(await measure(allow_all, contexts))
    full = stats(await measure(hook, contexts))
    mood = stats(await measure(feel, contexts))
    n = len(contexts) * ROUNDS
    print(f"messages per case: {n}")
    for name, (p50, p95, p99) in (("no-op hook (reference)", base), ("moderation hook", full), ("sentiment", mood)):
        print(f"{name:24} p50={p50:7.1f}us p95={p95:7.1f}us p99={p99:7.1f}us")
    print(f"hook p95 / reference p95 = {full[1] / base[1]:.0f}x; hook p95 / 5 ms target = {full[1] / 5000:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
