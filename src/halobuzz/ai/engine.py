"""The AI engine as its own service (``halobuzz ai-engine``, port 5020) and the API's client for it.

Requests are signed: ``X-AI-Timestamp`` (unix seconds) and ``X-AI-Signature`` = hex HMAC-SHA256 of
``"{timestamp}.{body}"`` with AI_ENGINE_SECRET. The engine refuses signatures outside the replay window
and any signature it has already accepted within it. When the engine cannot be reached, the client
answers with the configured degrade policy instead of failing the request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import OrderedDict
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from halobuzz.ai.text import Policy, Result, TextModerator

TS_HEADER, SIG_HEADER = "X-AI-Timestamp", "X-AI-Signature"
MAX_BODY = 64 * 1024


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class _Seen:
    """Signatures accepted within the replay window (bounded; old ones fall out with the window)."""

    def __init__(self, window: int, limit: int = 100_000) -> None:
        self.window, self.limit = window, limit
        self.items: OrderedDict[str, float] = OrderedDict()

    def add(self, signature: str, now: float) -> bool:
        while self.items and (next(iter(self.items.values())) < now - 2 * self.window or len(self.items) > self.limit):
            self.items.popitem(last=False)
        if signature in self.items:
            return False
        self.items[signature] = now
        return True


def create_engine_app(secret: str, *, region: str = "global", window_seconds: int = 300) -> Starlette:
    moderator = TextModerator.default(region)
    seen = _Seen(window_seconds)

    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def moderate_text(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY:
            return error(413, "payload_too_large", "request body too large")
        try:
            timestamp = int(request.headers.get(TS_HEADER, ""))
        except ValueError:
            return error(401, "bad_signature", "missing or invalid timestamp")
        now = time.time()
        if abs(now - timestamp) > window_seconds:
            return error(401, "stale_request", "timestamp outside the replay window")
        given = request.headers.get(SIG_HEADER, "")
        if not hmac.compare_digest(given, sign(secret, timestamp, body)):
            return error(401, "bad_signature", "signature does not match")
        if not seen.add(given, now):
            return error(401, "replayed_request", "this request was already received")
        try:
            data = json.loads(body)
            text = data["text"]
            terms = data.get("blocked_terms", [])
            if not isinstance(text, str) or not isinstance(terms, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return error(422, "invalid_input", "expected {text: string, blocked_terms?: [string]}")
        result = moderator.analyze(text, blocked_terms=[str(t) for t in terms])
        return JSONResponse({"labels": result.labels, "matches": list(result.matches), "language": result.language})

    return Starlette(routes=[Route("/healthz", healthz), Route("/v1/moderate/text", moderate_text, methods=["POST"])])


class EngineClient:
    """Calls a remote engine; on failure returns the degrade result (allow + queue, or hold)."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        on_failure: Literal["allow", "hold"] = "allow",
        timeout: float = 0.5,
        policy: Policy | None = None,
    ) -> None:
        self.url, self.secret, self.on_failure = url.rstrip("/"), secret, on_failure
        self.policy = policy or Policy()
        self.http = httpx.AsyncClient(timeout=timeout)
        self.failures = 0

    async def analyze(self, text: str, *, blocked_terms: list[str] | None = None) -> tuple[Result, bool]:
        """(result, degraded). A degraded result carries the label ``engine_unavailable``."""
        body = json.dumps({"text": text, "blocked_terms": blocked_terms or []}).encode()
        timestamp = int(time.time())
        headers = {
            TS_HEADER: str(timestamp),
            SIG_HEADER: sign(self.secret, timestamp, body),
            "Content-Type": "application/json",
        }
        try:
            response = await self.http.post(f"{self.url}/v1/moderate/text", content=body, headers=headers)
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return Result(labels=dict(data["labels"]), matches=tuple(data["matches"]), language=data["language"]), False
        except (httpx.HTTPError, ValueError, KeyError):
            self.failures += 1
            score = self.policy.hold if self.on_failure == "hold" else 0.0
            return Result(labels={"engine_unavailable": score}), True

    async def close(self) -> None:
        await self.http.aclose()
