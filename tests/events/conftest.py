"""Apps with the outbox relay and consumers running in-process (the embedded mode of `serve`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from halobuzz.app import HaloBuzzApp
from halobuzz.config import JobsSettings
from halobuzz.core import events

DEADLINE = 20.0


def jobs_settings(**overrides: Any) -> JobsSettings:
    values: dict[str, Any] = {"in_process": True, "relay_poll_seconds": 0.05, "backoff_base_seconds": 0.05}
    values.update(overrides)
    return JobsSettings(**values)


@pytest.fixture
async def app(app_factory: Callable[..., Any]) -> HaloBuzzApp:
    return await app_factory(jobs=jobs_settings())  # type: ignore[no-any-return]


@pytest.fixture
def register() -> Iterator[Callable[..., None]]:
    """Register consumers for one test; all are removed afterwards."""
    names: list[str] = []

    def add(event_type: str, name: str, handler: Any) -> None:
        events.register_consumer(event_type, name=name, target=handler)
        names.append(name)

    yield add
    for name in names:
        events.unregister_consumer(name)


async def wait_for(predicate: Callable[[], Any] | Callable[[], Awaitable[Any]], timeout: float = DEADLINE) -> Any:
    """Poll ``predicate`` until it returns a truthy value."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
