"""Liveness, readiness and Prometheus metrics (outside /api/v1)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from halobuzz.core.errors import JSONBytesResponse
from halobuzz.core.observability import DB_POOL_CHECKED_OUT, DB_POOL_SIZE
from halobuzz.core.runtime import Runtime

router = APIRouter(include_in_schema=True, tags=["health"])


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> JSONBytesResponse:
    return JSONBytesResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: the database (and Redis, when configured) answer")
async def readyz(request: Request) -> JSONBytesResponse:
    rt: Runtime = request.app.state.runtime
    checks: dict[str, str] = {}

    timeout = rt.settings.http.ready_timeout_seconds

    async def probe(name: str, coro: object) -> None:
        try:
            await asyncio.wait_for(coro, timeout=timeout)  # type: ignore[arg-type]
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready
            checks[name] = f"error: {type(exc).__name__}"

    await probe("database", rt.db.ping())
    if rt.settings.redis_url:
        await probe("redis", rt.kv.ping())
    ready = all(v == "ok" for v in checks.values())
    return JSONBytesResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    pool = rt.db.pool_status()
    DB_POOL_SIZE.set(pool["size"])
    DB_POOL_CHECKED_OUT.set(pool["checked_out"])
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
