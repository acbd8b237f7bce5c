"""Jobs for the scheduler tests, addressed by dotted path like the real ones."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path
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


def _job_dir() -> Path:
    return Path(os.environ["HALOBUZZ_TEST_JOB_DIR"])


async def slow(runtime: Any, *, scheduled_for: datetime) -> dict[str, Any]:
    """Marks that this process started it, then waits for the test's release file."""
    folder = _job_dir()
    (folder / f"started-{os.getpid()}").write_text("")
    while not (folder / "release").exists():
        await asyncio.sleep(0.05)
    return {"pid": os.getpid()}


async def fail_until_released(runtime: Any, *, scheduled_for: datetime) -> dict[str, Any]:
    folder = _job_dir()
    with (folder / "attempts").open("a") as f:
        f.write(f"{os.getpid()}\n")
    if not (folder / "release").exists():
        raise RuntimeError("not released yet")
    return {"pid": os.getpid()}
