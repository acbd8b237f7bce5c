"""Mounting the gateway: ``/socket.io`` goes to Socket.IO, everything else to the HTTP stack, and
the gateway starts after the application's startup and stops before its shutdown."""

from __future__ import annotations

from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from halobuzz.core.runtime import Runtime
from halobuzz.realtime.gateway import Gateway

log = structlog.get_logger(__name__)

SOCKET_PATH = "/socket.io"


class RealtimeMount:
    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind in ("http", "websocket"):
            path: str = scope["path"]
            if path == SOCKET_PATH or path.startswith(SOCKET_PATH + "/"):
                await self.gateway.handle(scope, receive, send)
                return
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self.gateway

        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                try:
                    await gateway.start()
                except Exception as exc:
                    log.exception("realtime_start_failed")
                    await send({"type": "lifespan.startup.failed", "message": f"real-time gateway: {exc}"})
                    return
            await send(message)

        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                try:
                    await gateway.stop()
                except Exception:
                    log.exception("realtime_stop_failed")
            return message

        await self.app(scope, lifespan_receive, lifespan_send)


def mount(app: ASGIApp, runtime: Runtime) -> ASGIApp:
    """Put the real-time gateway in front of ``app``; the gateway is ``runtime.extras["realtime"]``."""
    gateway = Gateway(runtime)
    runtime.extras["realtime"] = gateway
    return RealtimeMount(app, gateway)


def gateway_of(runtime: Runtime) -> Gateway | None:
    """This process's gateway, when one is mounted."""
    found: Any = runtime.extras.get("realtime")
    return found if isinstance(found, Gateway) else None
