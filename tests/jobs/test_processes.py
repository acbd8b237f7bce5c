"""`halobuzz worker` and `halobuzz scheduler` as real processes over the test database."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from halobuzz.app import HaloBuzzApp
from halobuzz.core import events
from halobuzz.core.broker import make_broker
from halobuzz.core.events import OutboxEvent
from halobuzz.jobs.schedule import JobRun
from tests.events.conftest import wait_for
from tests.events.test_webhooks import SECRET, Receiver, receiver  # noqa: F401 - fixture
from tests.jobs.test_scheduler import _admin

BROKER_URL = os.environ.get("BROKER_URL") or os.environ.get("REDIS_URL") or ""


@pytest.fixture
async def spawn(database_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    procs: list[asyncio.subprocess.Process] = []
    stream = f"hbt-{uuid.uuid4().hex[:12]}"  # a broker stream of this test's own

    async def start(command: str) -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "HALOBUZZ_ENV": "test",
            "HALOBUZZ_DATA_DIR": str(tmp_path / "var"),
            "HALOBUZZ_LOG_FORMAT": "console",
            "JOBS_RELAY_POLL_SECONDS": "0.1",
            "JOBS_BACKOFF_BASE_SECONDS": "0.1",
        }
        if BROKER_URL:
            env["BROKER_URL"] = BROKER_URL
            env["JOBS_BROKER_STREAM"] = stream
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "halobuzz.cli",
            command,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), timeout=20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    if BROKER_URL:
        broker = make_broker(BROKER_URL, stream=stream)
        await broker.delete()
        await broker.close()


async def test_worker_process_delivers_events_and_webhooks(
    app: HaloBuzzApp,
    client: httpx.AsyncClient,
    spawn: Any,
    receiver: Receiver,  # noqa: F811
) -> None:
    admin = await _admin(app)
    r = await client.post(
        "/api/v1/admin/webhooks",
        json={"url": receiver.url, "secret": SECRET, "event_types": ["gift.sent"]},
        headers=admin,
    )
    assert r.status_code == 201
    async with app.runtime.db.session() as s:
        emitted = events.emit(s, "gift.sent", {"coins_spent": 5})
    await spawn("worker")
    await spawn("worker")  # two workers share the outbox

    await wait_for(lambda: receiver.received, timeout=60)
    assert [e["id"] for e in receiver.received] == [str(emitted.id)]

    async def dispatched() -> bool:
        async with app.runtime.db.session(write=False) as s:
            row = await s.get(OutboxEvent, emitted.id, populate_existing=True)
            return row is not None and row.dispatched_at is not None

    await wait_for(dispatched, timeout=60)


async def test_two_scheduler_processes_fire_a_slot_once(app: HaloBuzzApp, spawn: Any) -> None:
    await spawn("scheduler")
    await spawn("scheduler")
    if BROKER_URL:
        await spawn("worker")  # with a broker the schedulers only queue the slots; a worker runs them

    async def finished() -> list[JobRun]:
        async with app.runtime.db.session(write=False) as s:
            runs = list(
                (
                    await s.execute(select(JobRun).where(JobRun.job == "halobuzz.payments.reconcile:reconcile_pending"))
                ).scalars()
            )
        return [r for r in runs if r.status != "running"]

    runs = await wait_for(finished, timeout=60)
    async with app.runtime.db.session(write=False) as s:
        per_slot = (
            await s.execute(
                select(JobRun.job, JobRun.scheduled_for, func.count()).group_by(JobRun.job, JobRun.scheduled_for)
            )
        ).all()
    assert all(n == 1 for _, _, n in per_slot)
    assert runs[0].status in ("succeeded", "skipped")
