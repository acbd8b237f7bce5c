"""Fast paths: pure-ASGI handlers for a few hot GET routes, ahead of FastAPI routing.

A fast handler answers only the plain success case and returns ``None`` for anything else
(bad input, missing rows, an unknown token …), in which case the request falls through to the
FastAPI route, which stays the single source of errors and of the OpenAPI description. Tests pin
that both paths give the same body.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

FastHandler = Callable[[Scope, dict[str, str]], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class FastRoute:
    pattern: re.Pattern[str]
    handler: FastHandler
    template: str


class FastPaths:
    """The registry of fast GET handlers; ``enabled=False`` sends everything to FastAPI."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.routes: list[FastRoute] = []
        self.served = 0  # requests answered here rather than by FastAPI

    def add(self, template: str, handler: FastHandler) -> None:
        """Serve GET ``template`` (with ``{name}`` segments) by ``handler`` when it can."""
        regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        self.routes.append(FastRoute(re.compile(regex), handler, template))


_JSON_HEADERS = [(b"content-type", b"application/json")]


class FastPathMiddleware:
    def __init__(self, app: ASGIApp, *, paths: FastPaths) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
                break
        await self.app(scope, receive, send)
