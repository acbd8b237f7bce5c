"""The socket side of in-app notifications: each new one goes to its recipient's ``user:{id}`` room
as the Socket.IO event ``notification`` (the list item's shape), from whichever process created it
(realtime/bus.py: the gateway here, or Redis pub/sub from a worker)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import Counter

from halobuzz.realtime import bus
from halobuzz.realtime.codec import dumps
from halobuzz.realtime.gateway import user_room

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime
    from halobuzz.notifications.service import Created

log = structlog.get_logger(__name__)

EVENT = "notification"
PUSHED = Counter("halobuzz_notifications_pushed_total", "Notifications published to user rooms")


async def push_created(
    runtime: Runtime, created: Sequence[Created], *, type: str, data: dict[str, Any], created_at: datetime
) -> int:
    """Publish ``notification`` to each recipient's room, in pipelined batches; the number published."""
    if not created:
        return 0
    # The shared part is encoded once; each recipient's body differs only by its notification id.
    tail = dumps({"type": type, "data": data, "created_at": created_at, "read_at": None})[1:]
    items = [(user_room(c.recipient_id), '{"id":"' + str(c.id) + '",' + tail) for c in created]
    try:
        sent = await bus.emit_each(runtime, EVENT, items, batch=runtime.settings.notifications.push_batch_size)
    except Exception:  # the rows are stored; a lost socket push is recovered by the next list read
        log.exception("notification_push_failed", count=len(items))
        return 0
    PUSHED.inc(sent)
    return sent
