"""Jobs for the scheduler tests, addressed by dotted path like the real ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

calls: list[datetime] = []
failures: dict[str, int] = {"left": 0}


async def count(runtime: Any, *, scheduled_for: datetime) -> dict[str, Any]:
    calls.append(scheduled_for)
    return {"calls": len(calls)}


async def flaky(runtime: Any, *, scheduled_for: datetime) -> dict[str, Any]:
    if failures["left"] > 0:
        failures["left"] -= 1
        raise RuntimeError("not yet")
    calls.append(scheduled_for)
    return {"ok": 1}
