"""Real servers and real Socket.IO clients for the gateway and chat tests.

``live(**settings)`` starts the application in an in-process uvicorn server on a free port (chosen
at run time) and returns its URL; every server is stopped when the test ends. ``SocketClient``
wraps python-socketio's AsyncClient and records every event it receives, so tests wait on
conditions instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import socketio
import uvicorn

from halobuzz.app import HaloBuzzApp, create_app
from halobuzz.config import Settings
from halobuzz.realtime.asgi import gateway_of
from halobuzz.realtime.gateway import Gateway

DEADLINE = 20.0


@dataclass
class Live:
    url: str
    app: HaloBuzzApp
    server: uvicorn.Server
    task: asyncio.Task[None]
    http: httpx.AsyncClient

    @property
    def gateway(self) -> Gateway:
        gateway = gateway_of(self.app.runtime)
        assert gateway is not None
        return gateway

    async def stop(self) -> None:
        await self.http.aclose()
        self.server.should_exit = True
        await asyncio.wait_for(self.task, timeout=30)


async def start_server(settings: Settings) -> Live:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + DEADLINE
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped while starting")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    return Live(url, app, server, task, httpx.AsyncClient(base_url=url, timeout=DEADLINE))


@pytest.fixture
async def live(
    app: HaloBuzzApp, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Awaitable[Live]]]:
    """Start real servers (settings overrides as keyword arguments); all stop when the test ends.

    Depends on ``app`` so the servers stop before the database is truncated.
    """
    servers: list[Live] = []

    async def start(**overrides: Any) -> Live:
        server = await start_server(make_settings(**overrides))
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        await server.stop()


@dataclass
class SocketClient:
    """A Socket.IO client that records the events it receives."""

    sio: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))
    events: list[tuple[str, Any]] = field(default_factory=list)
    # When each event arrived (time.monotonic()), parallel to ``events``.
    times: list[float] = field(default_factory=list)
    connect_error: Any = None
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        async def any_event(event: str, *args: Any) -> None:
            self.events.append((event, args[0] if args else None))
            self.times.append(time.monotonic())
            self._changed.set()

        async def connect_error(data: Any) -> None:
            self.connect_error = data
            self._changed.set()

        async def disconnect(*_args: Any) -> None:
            self.disconnected.set()
            self._changed.set()

        self.sio.on("*", any_event)
        self.sio.on("connect_error", connect_error)
        self.sio.on("disconnect", disconnect)

    async def connect(
        self, live: Live, token: str | None = None, *, transports: tuple[str, ...] = ("websocket",)
    ) -> None:
        await self.sio.connect(
            live.url,
            auth={"token": token} if token is not None else None,
            transports=list(transports),
            wait_timeout=DEADLINE,
        )

    async def call(self, event: str, data: Any = None) -> Any:
        if data is None:
            return await self.sio.call(event, timeout=DEADLINE)
        return await self.sio.call(event, data, timeout=DEADLINE)

    def of(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    def times_of(self, event: str) -> list[float]:
        return [at for (name, _), at in zip(self.events, self.times, strict=True) if name == event]

    async def wait_for(
        self, event: str, predicate: Callable[[Any], bool] = lambda _d: True, timeout: float = DEADLINE
    ) -> Any:
        """The first ``event`` whose data satisfies ``predicate``, waiting for it if needed."""
        deadline = time.monotonic() + timeout
        while True:
            for name, data in self.events:
                if name == event and predicate(data):
                    return data
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} matching the condition; got {self.events[-10:]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


@pytest.fixture
async def sockets() -> AsyncIterator[Callable[[], SocketClient]]:
    """Make Socket.IO clients; all are disconnected when the test ends."""
    made: list[SocketClient] = []

    def make() -> SocketClient:
        client = SocketClient()
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def create_stream(live: Live, owner: Any, *, go_live: bool = False, title: str = "Chat test") -> str:
    """A stream of ``owner`` (a creator) through the HTTP API; live when asked."""
    response = await live.http.post("/api/v1/streams", json={"title": title}, headers=owner.headers)
    assert response.status_code == 201, response.text
    stream_id = str(response.json()["id"])
    if go_live:
        response = await live.http.post(f"/api/v1/streams/{stream_id}/start", headers=owner.headers)
        assert response.status_code == 200, response.text
    return stream_id


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = DEADLINE, what: str = "condition") -> None:
    """Poll ``check`` until it holds (for effects that land in the background, like batched writes)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def joined(client: SocketClient, stream_id: str, **extra: Any) -> dict[str, Any]:
    ack = await client.call("join_stream", {"stream_id": stream_id, **extra})
    assert ack["ok"] is True, ack
    return dict(ack)


def new_id() -> str:
    return str(uuid.uuid4())
