"""Stopping background tasks reliably.

A plain ``task.cancel(); await task`` can hang for ever: ``asyncio.wait_for`` (Python 3.11) and
redis-py both lose a cancellation that lands while the awaited thing completes, and the task then
goes back to waiting. :func:`cancel_and_wait` repeats the cancellation until the task has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import structlog

log = structlog.get_logger("halobuzz.tasks")


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any] | None]) -> None:
    """Cancel every task and wait until each has ended; their errors are logged, not raised."""
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    while unfinished := [t for t in pending if not t.done()]:
        _, still = await asyncio.wait(unfinished, timeout=0.1)
        for task in still:
            task.cancel()
    for task in pending:
        if not task.cancelled() and task.exception() is not None:
            name = task.get_name() if isinstance(task, asyncio.Task) else repr(task)
            log.error("task_failed", task=name, error=repr(task.exception()))
