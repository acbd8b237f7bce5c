"""Stopping background tasks: a task that loses a cancellation is still stopped."""

from __future__ import annotations

import asyncio

from halobuzz.core.tasks import cancel_and_wait


async def test_a_task_that_swallows_a_cancellation_is_still_stopped() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 2:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await cancel_and_wait([task, None])
    assert task.cancelled()
    assert swallowed == 3


async def test_errors_of_stopped_tasks_are_not_raised() -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.wait([task])
    await cancel_and_wait([task])
    assert isinstance(task.exception(), RuntimeError)
