"""Rate limiting: token buckets per IP and per user, stricter on auth routes, configurable per route.

Pure ASGI, ahead of routing. A refused request gets 429 with ``Retry-After``; every limited
response carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` of its
tightest bucket. Buckets live in the shared store (Redis when configured, so every instance
draws from the same ones); when that store cannot be reached, requests pass unlimited and a
warning is logged.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from halobuzz.config import RateLimitSettings
from halobuzz.core.errors import error_body
from halobuzz.core.kv import Store
from halobuzz.core.observability import client_ip
from halobuzz.core.security import JWTCodec, TokenError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RouteRule:
    method: str
    pattern: re.Pattern[str]
    per_minute: int
    name: str


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_RULE = re.compile(r"^\s*(?P<method>[A-Za-z]+)\s+(?P<path>/\S*)\s*=\s*(?P<limit>\d+)\s*$")


def parse_route_rules(spec: str) -> list[RouteRule]:
    """Rules like ``POST /api/v1/auth/login=10, GET /api/v1/users/{id}=600`` (requests per minute).

    ``{name}`` stands for one path segment. A malformed entry raises ``ValueError`` naming it, so a
    bad ``RATE_LIMIT_ROUTES`` stops the process at startup instead of silently not limiting.
    """
    rules = []
    for raw in filter(None, (part.strip() for part in spec.split(","))):
        match = _RULE.match(raw)
        method = match["method"].upper() if match else ""
        if match is None or method not in _METHODS or int(match["limit"]) < 1:
            raise ValueError(
                f"RATE_LIMIT_ROUTES entry {raw!r} is not 'METHOD /path=N' "
                f"(METHOD one of {', '.join(sorted(_METHODS))}, N a whole number of requests per minute >= 1)"
            )
        path = match["path"]
        regex = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"
        rules.append(RouteRule(method, re.compile(regex), int(match["limit"]), f"{method} {path}"))
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
        self._last_failure_report = -math.inf

    def _report_store_failure(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_failure_report >= 10.0:  # once per 10 s, not once per request
            self._last_failure_report = now
            log.warning("rate_limit_store_unavailable", error=f"{type(exc).__name__}: {exc}")

    def _buckets(self, scope: Scope, ip: str, user_id: str | None) -> list[tuple[str, int]]:
        """The buckets a request draws from, most specific first: a request refused by a narrow
        bucket (a route rule, the auth routes) then does not use up the caller's general allowance."""
        path: str = scope["path"]
        method: str = scope["method"]
        buckets = [
            (f"rl:route:{rule.name}:{user_id or ip}", rule.per_minute)
            for rule in self.rules
            if rule.method == method and rule.pattern.match(path)
        ]
        if path.startswith("/api/v1/auth/"):
            buckets.append((f"rl:auth:{ip}", self.settings.auth_per_ip_per_minute))
        if user_id:
            buckets.append((f"rl:user:{user_id}", self.settings.per_user_per_minute))
        buckets.append((f"rl:ip:{ip}", self.settings.per_ip_per_minute))
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
        tightest: tuple[int, int] | None = None
        refused: tuple[int, float] | None = None
        try:
            for key, limit in self._buckets(scope, ip, user_id):
                allowed, remaining, wait = await self.store.take(key, limit, 60.0)
                if not allowed:
                    refused = (limit, wait)
                    break
                if tightest is None or remaining < tightest[1]:
                    tightest = (limit, remaining)
        except Exception as exc:  # an unreachable limit store must not take the API down with it
            self._report_store_failure(exc)
            await self.app(scope, receive, send)
            return
        if refused is not None:
            await _refuse(send, scope, refused[0], max(1, math.ceil(refused[1])))
            return
        assert tightest is not None
        limit, remaining = tightest
        # Seconds until the bucket is full again (it refills ``limit`` tokens per minute).
        reset = math.ceil((limit - remaining) * 60.0 / limit)
        headers = [
            (b"ratelimit-limit", str(limit).encode()),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(reset).encode()),
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
