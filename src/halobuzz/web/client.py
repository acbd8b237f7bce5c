"""Pages call the HTTP API in process (same routes, validation and error messages as any client)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.types import ASGIApp

_INTERNAL = "http://halobuzz.internal"


@dataclass(slots=True)
class ApiResult:
    status: int
    data: Any

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


class Api:
    """One request's view of the API, as the signed-in user when ``token`` is set."""

    def __init__(self, app: ASGIApp, token: str | None, *, ip: str, user_agent: str) -> None:
        self._app = app
        self.token = token
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
    ) -> ApiResult:
        sent = dict(self._headers)
        if self.token:
            sent["authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        transport = httpx.ASGITransport(app=self._app, client=(self._headers["x-forwarded-for"], 0))
        async with self._slots, httpx.AsyncClient(transport=transport, base_url=_INTERNAL) as client:
            response = await client.request(
                method, path if raw_path else "/api/v1" + path, json=json, params=clean, files=files, headers=sent
            )
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = response.text
        return ApiResult(response.status_code, data)

    async def get(self, path: str, **params: Any) -> ApiResult:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, json: Any = None, **kw: Any) -> ApiResult:
        return await self.call("POST", path, json=json, **kw)
