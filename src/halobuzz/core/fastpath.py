"""Fast paths: pure-ASGI handlers for a few hot routes, ahead of FastAPI routing.

A fast GET handler answers only the plain success case and returns ``None`` for anything else
(bad input, missing rows, an unknown token …), in which case the request falls through to the
FastAPI route, which stays the single source of input errors and of the OpenAPI description.
Tests pin that both paths give the same body.

A fast POST handler (``add_post``) gets the request body too (read here, at most
``MAX_FAST_BODY`` bytes, and replayed to FastAPI when the handler declines). It declines the same
way for anything it does not fully check itself; once it has acted it answers with the status,
body and headers of the outcome, errors in the shape of ``core.errors`` (``error_answer``).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from halobuzz.core.errors import DomainError, error_body

FastHandler = Callable[[Scope, dict[str, str]], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class FastAnswer:
    status: int
    body: bytes
    headers: dict[str, str] | None = None


FastPostHandler = Callable[[Scope, dict[str, str], bytes], Awaitable[FastAnswer | None]]
MAX_FAST_BODY = 4096


@dataclass(frozen=True, slots=True)
class FastRoute:
    pattern: re.Pattern[str]
    handler: FastHandler
    template: str


@dataclass(frozen=True, slots=True)
class FastPostRoute:
    pattern: re.Pattern[str]
    handler: FastPostHandler
    template: str


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


def error_answer(scope: Scope, exc: DomainError) -> FastAnswer:
    """A service error as the app's error handler renders it (``core.errors``)."""
    request_id = scope.get("state", {}).get("request_id")
    body = error_body(exc.status_code, exc.code, exc.message, exc.details, str(request_id) if request_id else None)
    return FastAnswer(exc.status_code, orjson.dumps(body), exc.headers or None)


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (None when it is larger than ``MAX_FAST_BODY`` or the client left)
    and a ``receive`` that replays what was read, for FastAPI when the fast handler declines."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    complete = False
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_FAST_BODY:
            break
        if not message.get("more_body", False):
            complete = True
            break
    pending = deque(messages)

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return (b"".join(chunks) if complete else None), replay


class FastPaths:
    """The registry of fast GET handlers; ``enabled=False`` sends everything to FastAPI."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.routes: list[FastRoute] = []
        self.post_routes: list[FastPostRoute] = []
        self.served = 0  # requests answered here rather than by FastAPI

    def add(self, template: str, handler: FastHandler) -> None:
        """Serve GET ``template`` (with ``{name}`` segments) by ``handler`` when it can."""
        self.routes.append(FastRoute(_pattern(template), handler, template))

    def add_post(self, template: str, handler: FastPostHandler) -> None:
        """Serve POST ``template`` by ``handler`` (which also gets the body) when it can."""
        self.post_routes.append(FastPostRoute(_pattern(template), handler, template))


_JSON_HEADERS = [(b"content-type", b"application/json")]


class FastPathMiddleware:
    def __init__(self, app: ASGIApp, *, paths: FastPaths) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.paths.enabled and self.paths.post_routes:
            path = scope["path"]
            for post in self.paths.post_routes:
                match = post.pattern.match(path)
                if match is None:
                    continue
                body, receive = await _read_body(receive)
                answer = await post.handler(scope, match.groupdict(), body) if body is not None else None
                if answer is not None:
                    self.paths.served += 1
                    scope.setdefault("state", {})["route_template"] = post.template
                    await _send(send, answer.status, answer.body, answer.headers)
                    return
                break
        if scope["type"] == "http" and scope["method"] == "GET" and self.paths.enabled:
            path = scope["path"]
            for route in self.paths.routes:
                match = route.pattern.match(path)
                if match is None:
                    continue
                body = await route.handler(scope, match.groupdict())
                if body is not None:
                    self.paths.served += 1
                    scope.setdefault("state", {})["route_template"] = route.template
                    await _send(send, 200, body)
                    return
                break
        await self.app(scope, receive, send)


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    raw: list[tuple[bytes, bytes]] = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
