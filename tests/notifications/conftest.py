"""Notification tests: apps with the relay, consumers and delivery dispatcher in-process, local
provider servers (real HTTP servers on free ports), and helpers that wait on conditions."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from halobuzz.app import HaloBuzzApp
from halobuzz.config import NotificationsSettings
from halobuzz.core import events
from halobuzz.notifications.models import Notification, NotificationDelivery
from tests.accounts.conftest import SmtpServer, body_of, free_port, smtp_server
from tests.events.conftest import jobs_settings, wait_for
from tests.realtime.support import live, sockets

__all__ = ["body_of", "free_port", "live", "smtp_server", "sockets"]

API = "/api/v1"


def notification_settings(**overrides: Any) -> NotificationsSettings:
    values: dict[str, Any] = {
        "backoff_base_seconds": 0.05,
        "dispatch_poll_seconds": 0.05,
        "http_timeout_seconds": 5.0,
        "email_require_verified": True,
    }
    values.update(overrides)
    return NotificationsSettings(**values)


@pytest.fixture
async def app(app_factory: Callable[..., Any], request: pytest.FixtureRequest) -> HaloBuzzApp:
    """An app with the relay and dispatcher running here, unless the test is marked ``no_relay``
    (its events are then handled by a live server or a worker process instead)."""
    if request.node.get_closest_marker("no_relay"):
        return await app_factory(notifications=notification_settings())  # type: ignore[no-any-return]
    return await app_factory(jobs=jobs_settings(), notifications=notification_settings())  # type: ignore[no-any-return]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_relay: the test's app fixture runs no relay or dispatcher")


async def emit(
    app: HaloBuzzApp, type_: str, data: dict[str, Any], *, actor_id: uuid.UUID | None = None
) -> events.Event:
    """Commit a domain event as a service would."""
    async with app.runtime.db.session() as s:
        return events.emit(s, type_, data, actor_id=actor_id)


async def notifications_of(app: HaloBuzzApp, user_id: uuid.UUID, type_: str | None = None) -> list[Notification]:
    async with app.runtime.db.session(write=False) as s:
        query = select(Notification).where(Notification.recipient_id == user_id).order_by(Notification.id)
        if type_:
            query = query.where(Notification.type == type_)
        return list(await s.scalars(query))


async def deliveries_of(app: HaloBuzzApp, user_id: uuid.UUID, channel: str | None = None) -> list[NotificationDelivery]:
    async with app.runtime.db.session(write=False) as s:
        query = select(NotificationDelivery).where(NotificationDelivery.user_id == user_id)
        if channel:
            query = query.where(NotificationDelivery.channel == channel)
        return list(await s.scalars(query.order_by(NotificationDelivery.id).execution_options(populate_existing=True)))


async def wait_notified(app: HaloBuzzApp, user_id: uuid.UUID, type_: str, count: int = 1) -> list[Notification]:
    async def check() -> list[Notification] | None:
        rows = await notifications_of(app, user_id, type_)
        return rows if len(rows) >= count else None

    rows: list[Notification] = await wait_for(check)
    return rows


async def wait_delivery(
    app: HaloBuzzApp, user_id: uuid.UUID, channel: str, predicate: Callable[[NotificationDelivery], bool]
) -> NotificationDelivery:
    async def check() -> NotificationDelivery | None:
        for row in await deliveries_of(app, user_id, channel):
            if predicate(row):
                return row
        return None

    row: NotificationDelivery = await wait_for(check)
    return row


@dataclass
class Provider:
    """A local HTTP server implementing a provider's endpoint; records every request it gets.

    ``script`` holds responses to give first (then ``default``)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Response] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, request: Request, body: bytes, **extra: Any) -> None:
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "body": body,
                "time": time.monotonic(),
                **extra,
            }
        )
        self.changed.set()

    def next_response(self, default: Response) -> Response:
        return self.script.pop(0) if self.script else default

    async def wait_requests(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        async def enough() -> bool:
            return len(self.requests) >= count

        await wait_for(enough, timeout=timeout)
        return self.requests


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[list[Route]], Awaitable[str]]]:
    """Start Starlette apps on uvicorn at free ports; their base URLs; all stopped afterwards."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(routes: list[Route]) -> str:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        servers.append((server, task))

        async def started() -> bool:
            if task.done():
                task.result()
            return bool(server.started)

        await wait_for(started)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, _task in servers:
        server.should_exit = True
    for _server, task in servers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=10)


def json_error(status: int, body: dict[str, Any], retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


__all__ += ["SmtpServer", "deliveries_of", "emit", "json_error", "notifications_of", "wait_delivery", "wait_notified"]
