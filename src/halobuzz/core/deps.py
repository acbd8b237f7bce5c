"""FastAPI dependencies shared by every domain's routes (the only FastAPI-aware part of core)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.config import Settings
from halobuzz.core.observability import client_ip
from halobuzz.core.pagination import PageParams, clamp_limit
from halobuzz.core.runtime import Runtime

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed when the route returns, rolled back when it raises.

    Reads (GET/HEAD) get a read-only session; on SQLite everything else starts with BEGIN IMMEDIATE.
    """
    rt: Runtime = request.app.state.runtime
    async with rt.db.session(write=request.method not in _READ_METHODS) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is reported.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@dataclass(frozen=True, slots=True)
class RequestMeta:
    ip: str
    user_agent: str
    request_id: str | None


async def get_request_meta(request: Request) -> RequestMeta:
    rt: Runtime = request.app.state.runtime
    state = request.scope.get("state", {})
    ip = state.get("client_ip") or client_ip(request.scope, rt.settings.http.trust_forwarded_for)
    return RequestMeta(
        ip=ip, user_agent=request.headers.get("user-agent", "")[:255], request_id=state.get("request_id")
    )


RequestMetaDep = Annotated[RequestMeta, Depends(get_request_meta)]


async def get_page_params(
    limit: Annotated[int | None, Query(ge=1, le=100, description="items per page (1-100, default 20)")] = None,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
) -> PageParams:
    return PageParams(limit=clamp_limit(limit), cursor=cursor or None)


PageDep = Annotated[PageParams, Depends(get_page_params)]
