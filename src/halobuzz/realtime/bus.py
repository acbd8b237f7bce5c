"""Emitting to Socket.IO rooms from any process, with or without a gateway of its own.

An API process (``serve``, ``api``) emits through its gateway's backend. A ``halobuzz worker`` has
no gateway: with Redis it publishes on the rooms' Redis channels (the ``RedisBackend`` format), and
every gateway instance with a member in a room delivers to it. Without Redis and without a
gateway there is nobody to reach (no socket can be connected to this process), so nothing is sent.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import structlog

from halobuzz.core.kv import RedisStore
from halobuzz.realtime.backend import Backend, MemoryBackend, RedisBackend

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)

_EXTRA = "realtime-publisher"


def publisher(runtime: Runtime) -> Backend | None:
    """The backend to publish room events through in this process, or None when none can reach a socket."""
    from halobuzz.realtime.asgi import gateway_of

    gateway = gateway_of(runtime)
    if gateway is not None:
        return gateway.backend
    found = runtime.extras.get(_EXTRA)
    if isinstance(found, RedisBackend):
        return found
    if isinstance(runtime.kv, RedisStore):
        rt = runtime.settings.realtime
        # Publishing needs only the client; nothing is subscribed or started here.
        backend = RedisBackend(
            runtime.kv.client,
            prefix=runtime.kv.prefix,
            instance_id="pub-" + secrets.token_hex(6),
            window=rt.recovery_max_messages,
            max_age=rt.recovery_max_seconds,
            history=rt.join_history,
            presence_ttl=rt.presence_ttl_seconds,
        )
        runtime.extras[_EXTRA] = backend
        return backend
    return None


def local_rooms(runtime: Runtime) -> set[str] | None:
    """The rooms with members in this process when that is everyone there is (the in-memory
    backend); None when other instances may hold members (Redis)."""
    from halobuzz.realtime.asgi import gateway_of

    gateway = gateway_of(runtime)
    if gateway is not None and isinstance(gateway.backend, MemoryBackend):
        return set(gateway.rooms)
    return None


async def emit_each(runtime: Runtime, event: str, items: list[tuple[str, str]], *, batch: int = 1000) -> int:
    """Emit ``event`` with its own JSON body to each room of ``items``, ``batch`` rooms per round
    trip; the number of rooms published to (rooms known to be empty are skipped)."""
    backend = publisher(runtime)
    if backend is None or not items:
        return 0
    present = local_rooms(runtime)
    if present is not None:
        items = [item for item in items if item[0] in present]
    for start in range(0, len(items), batch):
        await backend.publish_each(event, items[start : start + batch])
    return len(items)
