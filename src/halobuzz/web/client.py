"""Pages call the HTTP API in process (same routes, validation and error messages as any client)."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from starlette.types import ASGIApp

from halobuzz.core.cache import ResponseCacheMiddleware
from halobuzz.core.fastpath import FastPathMiddleware

_INTERNAL = "http://halobuzz.internal"


@dataclass(slots=True)
class ApiResult:
    status: int
    data: Any
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> str:
        """The API's error message (with field details when it names them)."""
        if self.ok:
            return ""
        err = (self.data or {}).get("error") if isinstance(self.data, dict) else None
        if not isinstance(err, dict):
            return f"request failed ({self.status})"
        message = str(err.get("message") or err.get("code") or self.status)
        details = err.get("details")
        fields = details.get("fields") if isinstance(details, dict) else None
        if isinstance(fields, list) and fields:
            parts = [f"{f.get('field')}: {f.get('message')}" for f in fields if isinstance(f, dict)]
            if parts:
                message += " — " + "; ".join(parts)
        return message

    @property
    def code(self) -> str:
        err = (self.data or {}).get("error") if isinstance(self.data, dict) else None
        return str(err.get("code")) if isinstance(err, dict) else ""


# A page runs at most this many API calls at once (they share the database pool with every
# other request, and some routes hold two connections).
CONCURRENT_CALLS = 3

_stacks: weakref.WeakKeyDictionary[Any, ASGIApp] = weakref.WeakKeyDictionary()


def _stack(app: Any) -> ASGIApp:
    """The FastAPI app behind the same hot-read fast paths and response cache as outside calls
    (rate limits and request logs stay with the page request that makes the calls)."""
    stack = _stacks.get(app)
    if stack is None:
        runtime = app.state.runtime
        stack = ResponseCacheMiddleware(FastPathMiddleware(app, paths=runtime.fast_paths), cache=runtime.cache)
        _stacks[app] = stack
    return stack


class Api:
    """One request's view of the API, as the signed-in user when ``token`` is set."""

    def __init__(self, app: ASGIApp, token: str | None, *, ip: str, user_agent: str) -> None:
        self._app = app
        self.token = token
        self._ip = ip
        self._headers = {"user-agent": user_agent or "halobuzz-web", "x-forwarded-for": ip}
        self._slots = asyncio.Semaphore(CONCURRENT_CALLS)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        raw_path: bool = False,
        anonymous: bool = False,
    ) -> ApiResult:
        sent = dict(self._headers)
        if self.token and not anonymous:
            sent["authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        body = b""
        if files is not None:
            # httpx encodes the multipart body; the call itself goes straight to the app.
            encoded = httpx.Request(method, _INTERNAL, files=files)
            body = encoded.read()
            sent["content-type"] = encoded.headers["content-type"]
        elif json is not None:
            body = orjson.dumps(json)
            sent["content-type"] = "application/json"
        async with self._slots:
            status, content, received = await _asgi_call(
                _stack(self._app), method, path if raw_path else "/api/v1" + path, clean, sent, body, self._ip
            )
        data: Any = None
        if content:
            try:
                data = orjson.loads(content)
            except orjson.JSONDecodeError:
                data = content.decode("utf-8", "replace")
        return ApiResult(status, data, received, content)

    async def get(self, path: str, **params: Any) -> ApiResult:
        return await self.call("GET", path, params=params)

    async def public(self, path: str, **params: Any) -> ApiResult:
        """A read that is the same for everyone, made anonymously so the response cache serves it."""
        return await self.call("GET", path, params=params, anonymous=True)

    async def post(self, path: str, json: Any = None, **kw: Any) -> ApiResult:
        return await self.call("POST", path, json=json, **kw)


async def _asgi_call(
    app: ASGIApp, method: str, path: str, params: dict[str, Any], headers: dict[str, str], body: bytes, ip: str
) -> tuple[int, bytes, dict[str, str]]:
    """One HTTP request to an ASGI app in this process: (status, body, headers)."""
    raw = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]
    raw += [(b"host", b"halobuzz.internal"), (b"content-length", str(len(body)).encode())]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(params, doseq=True).encode(),
        "root_path": "",
        "headers": raw,
        "client": (ip, 0),
        "server": ("halobuzz.internal", 80),
        "state": {},
    }
    sent_body = False
    status = 500
    chunks: list[bytes] = []
    received: dict[str, str] = {}

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more: the app only waits here for a disconnect
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for k, v in message.get("headers", []):
                received[k.decode("latin-1").lower()] = v.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, b"".join(chunks), received
