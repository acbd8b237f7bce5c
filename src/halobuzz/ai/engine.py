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
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from halobuzz.ai import engagement, sentiment, tags
from halobuzz.ai.text import Policy, Result, RuleSet, TextModerator

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


def _engagement_samples(raw: Any) -> list[engagement.Sample]:
    if not isinstance(raw, list) or len(raw) > 1000:
        raise TypeError
    out = []
    for item in raw:
        at = datetime.fromisoformat(str(item["at"]))
        if at.tzinfo is None:
            raise TypeError
        mood = item.get("mood")
        out.append(
            engagement.Sample(
                at=at,
                viewers=int(item["viewers"]),
                messages=int(item["messages"]),
                mood=None if mood is None else float(mood),
            )
        )
    return out


def create_engine_app(
    secret: str, *, region: str = "global", window_seconds: int = 300, rules: dict[str, RuleSet] | None = None
) -> Starlette:
    """The engine's HTTP app: text moderation, sentiment, tags and engagement, behind signed requests."""
    moderator = TextModerator.default(region, rules=rules)
    seen = _Seen(window_seconds)

    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def verified(request: Request) -> dict[str, Any] | JSONResponse:
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
        except ValueError:
            return error(422, "invalid_input", "the body must be a JSON object")
        if not isinstance(data, dict):
            return error(422, "invalid_input", "the body must be a JSON object")
        return data

    def endpoint(
        handler: Callable[[dict[str, Any]], dict[str, Any]], expected: str
    ) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def run(request: Request) -> JSONResponse:
            data = await verified(request)
            if isinstance(data, JSONResponse):
                return data
            try:
                return JSONResponse(handler(data))
            except (ValueError, KeyError, TypeError):
                return error(422, "invalid_input", f"expected {expected}")

        return run

    def moderate_text(data: dict[str, Any]) -> dict[str, Any]:
        text, terms, where = data["text"], data.get("blocked_terms", []), data.get("region")
        if not isinstance(text, str) or not isinstance(terms, list) or not isinstance(where, str | None):
            raise TypeError
        result = moderator.analyze(text, blocked_terms=[str(t) for t in terms], region=where)
        return {"labels": result.labels, "matches": list(result.matches), "language": result.language}

    def sentiment_of(data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(data["text"], str):
            raise TypeError
        return sentiment.analyze(data["text"]).as_dict()

    def tags_of(data: dict[str, Any]) -> dict[str, Any]:
        title, description = data["title"], data.get("description", "")
        if not isinstance(title, str) or not isinstance(description, str):
            raise TypeError
        return {"tags": tags.suggest(title, description)}

    def engagement_of(data: dict[str, Any]) -> dict[str, Any]:
        samples = _engagement_samples(data["samples"])
        report = engagement.analyze(
            samples,
            viewer_drop=float(data.get("viewer_drop", 0.3)),
            chat_drop=float(data.get("chat_drop", 0.5)),
        )
        return report.as_dict()

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route(
                "/v1/moderate/text",
                endpoint(moderate_text, "{text: string, blocked_terms?: [string], region?: string}"),
                methods=["POST"],
            ),
            Route("/v1/sentiment", endpoint(sentiment_of, "{text: string}"), methods=["POST"]),
            Route("/v1/tags", endpoint(tags_of, "{title: string, description?: string}"), methods=["POST"]),
            Route(
                "/v1/engagement",
                endpoint(engagement_of, "{samples: [{at, viewers, messages, mood?}], viewer_drop?, chat_drop?}"),
                methods=["POST"],
            ),
        ]
    )


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

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        timestamp = int(time.time())
        headers = {
            TS_HEADER: str(timestamp),
            SIG_HEADER: sign(self.secret, timestamp, body),
            "Content-Type": "application/json",
        }
        response = await self.http.post(f"{self.url}{path}", content=body, headers=headers)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    async def analyze(
        self, text: str, *, blocked_terms: list[str] | None = None, region: str | None = None
    ) -> tuple[Result, bool]:
        """(result, degraded). A degraded result carries the label ``engine_unavailable``."""
        payload: dict[str, Any] = {"text": text, "blocked_terms": blocked_terms or []}
        if region is not None:
            payload["region"] = region
        try:
            data = await self._post("/v1/moderate/text", payload)
            return Result(labels=dict(data["labels"]), matches=tuple(data["matches"]), language=data["language"]), False
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            self.failures += 1
            score = self.policy.hold if self.on_failure == "hold" else 0.0
            return Result(labels={"engine_unavailable": score}), True

    async def sentiment(self, text: str) -> sentiment.Sentiment:
        """The engine's sentiment; neutral (language ``und``) when it cannot be reached."""
        try:
            data = await self._post("/v1/sentiment", {"text": text})
            return sentiment.Sentiment(str(data["label"]), float(data["score"]), str(data["language"]))
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            self.failures += 1
            return sentiment.Sentiment("neutral", 0.0, "und")

    async def tags(self, title: str, description: str = "") -> list[str]:
        """The engine's tags; none when it cannot be reached."""
        try:
            data = await self._post("/v1/tags", {"title": title, "description": description})
            return [str(t) for t in data["tags"]]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            self.failures += 1
            return []

    async def engagement(
        self, samples: list[engagement.Sample], *, viewer_drop: float, chat_drop: float
    ) -> engagement.Report:
        """The engine's engagement report; ``insufficient_data`` (no hint) when it cannot be reached."""
        payload = {
            "samples": [
                {"at": s.at.isoformat(), "viewers": s.viewers, "messages": s.messages, "mood": s.mood} for s in samples
            ],
            "viewer_drop": viewer_drop,
            "chat_drop": chat_drop,
        }
        try:
            data = await self._post("/v1/engagement", payload)
            return engagement.Report(
                status=str(data["status"]),
                signals=[str(x) for x in data["signals"]],
                viewer_change=data["viewer_change"],
                chat_change=data["chat_change"],
                mood=data["mood"],
                hint=data["hint"],
            )
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            self.failures += 1
            return engagement.Report("insufficient_data")

    async def close(self) -> None:
        await self.http.aclose()
