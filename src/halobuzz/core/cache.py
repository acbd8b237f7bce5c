"""In-process response cache for hot public reads, ahead of routing (pure ASGI).

Only anonymous GETs of registered paths are cached, and only 200 responses. Entries carry a tag;
``invalidate(tag)`` (called after commit by the domain that changed the data) drops them at once.
With Redis configured, invalidations are broadcast so every instance drops its copies; the short
TTL bounds staleness if a broadcast is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

_UNCACHEABLE_HEADERS = (b"authorization", b"cookie")
_PER_REQUEST_HEADERS = frozenset({b"x-request-id", b"set-cookie"})


@dataclass(slots=True)
class _Entry:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    expires: float
    generation: int


@dataclass
class ResponseCache:
    ttl_seconds: float = 2.0
    max_entries: int = 2048
    paths: dict[str, str] = field(default_factory=dict)  # exact path → tag
    _entries: OrderedDict[bytes, _Entry] = field(default_factory=OrderedDict)
    _generations: dict[str, int] = field(default_factory=dict)
    _filling: dict[bytes, asyncio.Future[None]] = field(default_factory=dict)
    # Set when Redis broadcasts invalidations to the other instances.
    publish: Callable[[str], Coroutine[Any, Any, None]] | None = None

    def register(self, path: str, tag: str) -> None:
        """Cache anonymous GETs of ``path`` under ``tag``."""
        self.paths[path] = tag

    def invalidate_local(self, tag: str) -> None:
        self._generations[tag] = self._generations.get(tag, 0) + 1

    def invalidate(self, tag: str) -> None:
        """Drop every entry of ``tag`` here, and on the other instances when Redis is configured."""
        self.invalidate_local(tag)
        if self.publish is not None:
            task = asyncio.get_running_loop().create_task(self.publish(tag))
            task.add_done_callback(_log_failure)

    def lookup(self, key: bytes, tag: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires < time.monotonic() or entry.generation != self._generations.get(tag, 0):
            self._entries.pop(key, None)
            return None
        return entry

    def store(
        self,
        key: bytes,
        tag: str,
        generation: int,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        if generation != self._generations.get(tag, 0):
            return  # the data changed while this response was being built
        self._entries[key] = _Entry(status, headers, body, time.monotonic() + self.ttl_seconds, generation)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("cache_invalidation_broadcast_failed", error=str(task.exception()))


class ResponseCacheMiddleware:
    def __init__(self, app: ASGIApp, *, cache: ResponseCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        tag = self.cache.paths.get(scope["path"])
        if tag is None or any(name in _UNCACHEABLE_HEADERS for name, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return
        key = scope["path"].encode() + b"?" + scope.get("query_string", b"")
        if await self._serve_cached(scope, send, key, tag):
            return
        # Single flight: when an entry expires under load, one request rebuilds it and the others
        # wait for that response instead of all querying the database at once.
        pending = self.cache._filling.get(key)
        if pending is not None:
            await asyncio.shield(pending)
            if await self._serve_cached(scope, send, key, tag):
                return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.cache._filling[key] = done
        try:
            await self._fill(scope, receive, send, key, tag)
        finally:
            if self.cache._filling.get(key) is done:
                del self.cache._filling[key]
            done.set_result(None)

    async def _serve_cached(self, scope: Scope, send: Send, key: bytes, tag: str) -> bool:
        entry = self.cache.lookup(key, tag)
        if entry is None:
            return False
        state = scope.setdefault("state", {})
        state["cached"] = True
        state["route_template"] = scope["path"]
        await send({"type": "http.response.start", "status": entry.status, "headers": entry.headers})
        await send({"type": "http.response.body", "body": entry.body})
        return True

    async def _fill(self, scope: Scope, receive: Receive, send: Send, key: bytes, tag: str) -> None:
        generation = self.cache._generations.get(tag, 0)
        status: int | None = None
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                # Copy now: the middleware outside adds per-request headers (rate limits, request id)
                # to this very message once it is sent, and those must not be replayed.
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k not in _PER_REQUEST_HEADERS]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and status == 200:
                    self.cache.store(key, tag, generation, 200, headers, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, capture)
