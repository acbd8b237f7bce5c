"""Starting the background machinery: the outbox relay (consumers) and the scheduler.

``halobuzz serve`` runs both in its lifespan (embedded mode); ``halobuzz worker`` runs the relay and
``halobuzz scheduler`` the scheduler as their own processes. With ``BROKER_URL`` the relay publishes
to the broker, the scheduler queues its slots there, and workers consume (halobuzz.jobs.worker).
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import TYPE_CHECKING

from halobuzz.core.events import Relay, RelaySettings
from halobuzz.core.tasks import cancel_and_wait

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

# Modules whose import registers consumers (the decorator runs at import time).
CONSUMER_MODULES = ("halobuzz.webhooks.service", "halobuzz.notifications.consumers", "halobuzz.media.consumers")


def load_consumers() -> None:
    """Import the modules that register consumers; missing optional ones are skipped."""
    import importlib

    for name in CONSUMER_MODULES:
        with suppress(ModuleNotFoundError):
            importlib.import_module(name)


def runs_in_process(runtime: Runtime) -> bool:
    """Whether `serve` runs the relay and scheduler itself."""
    flag = runtime.settings.jobs.in_process
    if flag is not None:
        return flag
    return not runtime.settings.broker_url and runtime.settings.env != "test"


def start(runtime: Runtime, *, relay: bool = True, scheduler: bool = True) -> list[asyncio.Task[None]]:
    """Start the relay and/or the scheduler as tasks of the running loop."""
    from halobuzz.jobs.schedule import Scheduler

    load_consumers()
    tasks: list[asyncio.Task[None]] = []
    brokered = bool(runtime.settings.broker_url)
    if relay:
        if brokered:
            from halobuzz.jobs.worker import BrokerRelay, run_worker

            r: Relay = BrokerRelay(runtime, RelaySettings.from_settings(runtime))
            tasks.append(asyncio.create_task(run_worker(runtime), name="broker-worker"))
        else:
            r = Relay(runtime, RelaySettings.from_settings(runtime))
        runtime.extras["relay"] = r
        tasks.append(asyncio.create_task(r.run(), name="outbox-relay"))
        from halobuzz.webhooks.service import Dispatcher

        tasks.append(asyncio.create_task(Dispatcher(runtime).run(), name="webhook-dispatcher"))
        from halobuzz.notifications.dispatch import Dispatcher as NotificationDispatcher

        tasks.append(asyncio.create_task(NotificationDispatcher(runtime).run(), name="notification-dispatcher"))
    if scheduler:
        sch = Scheduler(runtime, broker=brokered)
        runtime.extras["scheduler"] = sch
        tasks.append(asyncio.create_task(sch.run(), name="scheduler"))
    return tasks


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    await cancel_and_wait(tasks)


async def serve_forever(runtime: Runtime, *, relay: bool, scheduler: bool) -> None:
    """Run until cancelled (the worker and scheduler commands)."""
    tasks = start(runtime, relay=relay, scheduler=scheduler)
    try:
        await asyncio.gather(*tasks)
    finally:
        await stop(tasks)
        await runtime.close()
