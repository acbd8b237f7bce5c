"""Counts announced at most once per interval per stream (viewer counts, likes).

A change marks the stream dirty; the loop recomputes the value and announces it when it differs
from the last value announced by any instance. The first change after a quiet interval goes out
at once, later ones wait for the interval; with Redis a short lock keeps all instances together
within one announcement per interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress

import structlog

from halobuzz.core.tasks import cancel_and_wait
from halobuzz.realtime.backend import Backend

log = structlog.get_logger(__name__)


class ThrottledCounts:
    def __init__(
        self,
        *,
        kind: str,
        interval: float,
        backend: Backend,
        compute: Callable[[str], Awaitable[int]],
        announce: Callable[[str, int], Awaitable[None]],
    ) -> None:
        self.kind = kind
        self.interval = interval
        self.backend = backend
        self.compute = compute
        self.announce = announce
        self._dirty: set[str] = set()
        self._next: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def settle(self) -> None:
        """Wait until every change marked so far has been counted (and announced if it changed)."""
        await self._idle.wait()

    def mark(self, stream_id: str) -> None:
        """The stream's count may have changed."""
        self._dirty.add(stream_id)
        self._idle.clear()
        self._wake.set()

    async def reset(self, stream_id: str) -> None:
        """Announce the stream's count at the next chance even if it did not change."""
        await self.backend.forget_emit(self.kind, stream_id)
        self._next.pop(stream_id, None)
        self.mark(stream_id)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"counts-{self.kind}")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                now = time.monotonic()
                for stream_id in [s for s in self._dirty if self._next.get(s, 0.0) <= now]:
                    self._dirty.discard(stream_id)
                    try:
                        await self._process(stream_id)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("count_announce_failed", kind=self.kind, stream_id=stream_id)
                if self._dirty:
                    soonest = min(self._next.get(s, 0.0) for s in self._dirty)
                    self._wake.clear()
                    with suppress(TimeoutError):  # a new change may be due before the soonest
                        await asyncio.wait_for(self._wake.wait(), timeout=max(0.02, soonest - time.monotonic()))
            self._idle.set()
            # Forget throttle entries that have expired, so the map stays small.
            now = time.monotonic()
            self._next = {s: t for s, t in self._next.items() if t > now}

    async def _process(self, stream_id: str) -> None:
        value = await self.compute(stream_id)
        claim = await self.backend.claim_emit(self.kind, stream_id, value, int(self.interval * 1000))
        now = time.monotonic()
        if claim == "busy":  # another instance announced within the interval: look again shortly
            self._dirty.add(stream_id)
            self._next[stream_id] = now + self.interval / 4
        elif claim == "emit":
            self._next[stream_id] = now + self.interval
            await self.announce(stream_id, value)
