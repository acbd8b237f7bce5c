"""Rate limiting: token buckets per IP and per user, stricter on auth routes, configurable per route.

Pure ASGI, ahead of routing. A refused request gets 429 with ``Retry-After``; every limited
response carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from halobuzz.config import RateLimitSettings
from halobuzz.core.errors import error_body
from halobuzz.core.kv import Store
from halobuzz.core.observability import client_ip
from halobuzz.core.security import JWTCodec, TokenError


@dataclass(frozen=True, slots=True)
class RouteRule:
    method: str
    pattern: re.Pattern[str]
    per_minute: int
    name: str


def parse_route_rules(spec: str) -> list[RouteRule]:
    """Rules like ``POST /api/v1/auth/login=10, GET /api/v1/users/{id}=600``."""
    rules = []
    for raw in filter(None, (part.strip() for part in spec.split(","))):
        try:
            route, limit = raw.rsplit("=", 1)
            method, path = route.split(None, 1)
            regex = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path.strip())) + "$"
            rules.append(RouteRule(method.upper(), re.compile(regex), int(limit), f"{method.upper()} {path.strip()}"))
        except ValueError as exc:
            raise ValueError(f"RATE_LIMIT_ROUTES entry {raw!r} is not 'METHOD /path=N'") from exc
    return rules


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: RateLimitSettings,
        store: Store,
        jwt: JWTCodec,
        trust_forwarded_for: bool,
    ) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.jwt = jwt
        self.trust_forwarded_for = trust_forwarded_for
        self.rules = parse_route_rules(settings.routes)

    def _buckets(self, scope: Scope, ip: str, user_id: str | None) -> list[tuple[str, int]]:
        path: str = scope["path"]
        method: str = scope["method"]
        buckets = [(f"rl:ip:{ip}", self.settings.per_ip_per_minute)]
        if user_id:
            buckets.append((f"rl:user:{user_id}", self.settings.per_user_per_minute))
        if path.startswith("/api/v1/auth/"):
            buckets.append((f"rl:auth:{ip}", self.settings.auth_per_ip_per_minute))
        for rule in self.rules:
            if rule.method == method and rule.pattern.match(path):
                buckets.append((f"rl:route:{rule.name}:{user_id or ip}", rule.per_minute))
        return buckets

    def _user_id(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token:
                    try:
                        return str(self.jwt.decode_access(token).user_id)
                    except TokenError:
                        return None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.enabled or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        ip = client_ip(scope, self.trust_forwarded_for)
        scope.setdefault("state", {})["client_ip"] = ip
        user_id = self._user_id(scope)
        tightest: tuple[int, int, float] | None = None
        for key, limit in self._buckets(scope, ip, user_id):
            allowed, remaining, wait = await self.store.take(key, limit, 60.0)
            if not allowed:
                retry = max(1, math.ceil(wait))
                await _refuse(send, scope, limit, retry)
                return
            if tightest is None or remaining < tightest[1]:
                tightest = (limit, remaining, wait)
        assert tightest is not None
        limit, remaining, wait = tightest
        headers = [
            (b"ratelimit-limit", str(limit).encode()),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(math.ceil(wait)).encode()),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(send: Send, scope: Scope, limit: int, retry_after: int) -> None:
    rid = scope.get("state", {}).get("request_id")
    body = orjson.dumps(
        error_body(
            429,
            "rate_limited",
            f"too many requests; retry in {retry_after} s",
            {"retry_after": retry_after},
            rid,
        )
    )
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
                (b"ratelimit-limit", str(limit).encode()),
                (b"ratelimit-remaining", b"0"),
                (b"ratelimit-reset", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
