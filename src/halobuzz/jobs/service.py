"""Admin views of background work: the schedule, dead letters, daily reports."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.core.db import after_commit
from halobuzz.core.errors import Conflict, NotFound
from halobuzz.core.events import DeadLetterJob, requeue_dead_letter
from halobuzz.core.pagination import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)
_tasks: set[asyncio.Task[Any]] = set()


async def list_dead_letters(
    *, session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[DeadLetterJob], str | None]:
    """Dead letters, newest first (ids are time-ordered)."""
    query = select(DeadLetterJob).order_by(DeadLetterJob.id.desc()).limit(limit + 1)
    if cursor:
        (after,) = decode_cursor(cursor, uuid.UUID)
        query = query.where(DeadLetterJob.id < after)
    rows = list((await session.execute(query)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None


async def retry_dead_letter(*, session: AsyncSession, runtime: Runtime, dead_id: uuid.UUID) -> DeadLetterJob:
    """Retry a dead letter: re-queue its event, or run its job again after commit."""
    dead = await session.get(DeadLetterJob, dead_id, with_for_update=True)
    if dead is None:
        raise NotFound("no such dead letter", code="dead_letter_not_found")
    if dead.retried_at is not None:
        raise Conflict("this dead letter was already retried", code="already_retried")
    if dead.kind == "job":
        from halobuzz.core.clock import utcnow
        from halobuzz.jobs.schedule import rerun
        from halobuzz.jobs.worker import requeue_job

        dead.retried_at = utcnow()
        await session.flush()
        job, slot = dead.name, datetime.fromisoformat(dead.payload["scheduled_for"])
        # With a broker the run goes back to the workers; embedded, it runs here.
        again = requeue_job if runtime.settings.broker_url else rerun

        def _spawn() -> None:
            task = asyncio.create_task(again(runtime, job, scheduled_for=slot))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)

        after_commit(session, _spawn)
    elif dead.kind == "webhook":
        from halobuzz.webhooks import service as webhooks

        await webhooks.requeue(session, dead=dead)
        after_commit(session, webhooks.wake_all)
    else:
        await requeue_dead_letter(session, dead=dead)
    return dead
