"""`halobuzz worker` (two of them) and `halobuzz scheduler` as real processes over a real broker.

Each test runs against Redis Streams and against NATS JetStream, on a stream of its own that is
deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from halobuzz.app import HaloBuzzApp
from halobuzz.core.broker import Broker, make_broker
from halobuzz.core.events import DeadLetterJob, ProcessedEvent
from halobuzz.jobs.schedule import JobRun
from halobuzz.jobs.worker import job_message
from halobuzz.notifications.models import Notification
from tests.conftest import TEST_REDIS_URL
from tests.events.conftest import wait_for
from tests.events.test_webhooks import SECRET, Receiver, receiver  # noqa: F401 - fixture
from tests.jobs.test_scheduler import _admin

NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
URLS = {"redis": TEST_REDIS_URL or "redis://127.0.0.1:6379/0", "nats": NATS_URL}
DEADLINE = 90.0
# A live worker renews its claim every third of this; on a loaded machine a renewal can be seconds
# late, and a shorter idle time would let a live worker's job be taken over.
CLAIM_IDLE_SECONDS = 6.0


@dataclass
class Cluster:
    url: str
    stream: str
    broker: Broker
    job_dir: Path
    start: Callable[..., Any]
    procs: list[asyncio.subprocess.Process]


@pytest.fixture(params=["redis", "nats"])
async def cluster(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    url = URLS[request.param]
    stream = f"hbt-{uuid.uuid4().hex[:12]}"
    broker = make_broker(url, stream=stream, claim_idle_seconds=CLAIM_IDLE_SECONDS)
    job_dir = tmp_path / "jobs"
    job_dir.mkdir()
    procs: list[asyncio.subprocess.Process] = []

    async def start(command: str) -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BROKER_URL": url,
            "HALOBUZZ_ENV": "test",
            "HALOBUZZ_DATA_DIR": str(tmp_path / "var"),
            "HALOBUZZ_LOG_FORMAT": "console",
            "JOBS_BROKER_STREAM": stream,
            "JOBS_BROKER_CLAIM_IDLE_SECONDS": str(CLAIM_IDLE_SECONDS),
            "JOBS_RELAY_POLL_SECONDS": "0.1",
            "JOBS_BACKOFF_BASE_SECONDS": "0.1",
            "JOBS_MAX_ATTEMPTS": "3",
            "HALOBUZZ_TEST_JOB_DIR": str(job_dir),
        }
        log = (tmp_path / f"{command}-{len(procs)}.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "halobuzz.cli", command, env=env, stdout=log, stderr=log
        )
        log.close()
        procs.append(proc)
        return proc

    yield Cluster(url, stream, broker, job_dir, start, procs)
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), timeout=20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    await broker.delete()
    await broker.close()


@pytest.fixture
async def app(app_factory: Callable[..., Any], cluster: Cluster) -> HaloBuzzApp:
    """The API process: BROKER_URL set, so it runs no relay or scheduler itself."""
    from halobuzz.config import JobsSettings

    jobs = JobsSettings(broker_stream=cluster.stream, broker_claim_idle_seconds=CLAIM_IDLE_SECONDS)
    built: HaloBuzzApp = await app_factory(broker_url=cluster.url, jobs=jobs)
    return built


async def _claim(app: HaloBuzzApp, job: str) -> JobRun:
    from halobuzz.core.clock import utcnow

    async with app.runtime.db.session() as s:
        run = JobRun(job=job, scheduled_for=utcnow(), status="running", attempts=0, started_at=utcnow())
        s.add(run)
        await s.flush()
    return run


async def _run(app: HaloBuzzApp, run_id: uuid.UUID) -> JobRun | None:
    async with app.runtime.db.session(write=False) as s:
        row: JobRun | None = await s.get(JobRun, run_id, populate_existing=True)
        return row


async def test_event_from_the_api_is_consumed_once_even_when_delivered_twice(
    app: HaloBuzzApp,
    cluster: Cluster,
    make_user: Callable[..., Any],
    receiver: Receiver,  # noqa: F811
) -> None:
    from tests.conftest import client_for

    receiver.fail_first = 0
    admin = await _admin(app)
    async with client_for(app) as client:
        r = await client.post(
            "/api/v1/admin/webhooks",
            json={"url": receiver.url, "secret": SECRET, "event_types": ["user.new_follower"]},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        await cluster.start("worker")
        await cluster.start("worker")
        star, fan = await make_user(), await make_user()
        r = await client.post(f"/api/v1/users/{star.id}/follow", headers=fan.headers)
        assert r.status_code in (200, 201, 204), r.text

    await wait_for(lambda: receiver.received, timeout=DEADLINE)
    (envelope,) = receiver.received
    assert envelope["type"] == "user.new_follower"
    assert envelope["data"]["follower_id"] == str(fan.id)

    # The same event delivered twice more (a redelivery after a lost ack): nothing happens again.
    for _ in range(2):
        await cluster.broker.publish({"kind": "event", "event": envelope})
    await wait_for(_drained(cluster.broker), timeout=DEADLINE)
    async with app.runtime.db.session(write=False) as s:
        notes = await s.scalar(
            select(func.count()).select_from(Notification).where(Notification.recipient_id == star.id)
        )
        marks = await s.scalar(
            select(func.count()).select_from(ProcessedEvent).where(ProcessedEvent.event_id == uuid.UUID(envelope["id"]))
        )
    assert notes == 1
    assert marks == 2  # the webhooks consumer and the notifications consumer, once each
    assert len(receiver.received) == 1


def _drained(broker: Broker) -> Callable[[], Any]:
    async def check() -> bool:
        return await broker.pending() == 0

    return check


async def test_a_job_of_a_killed_worker_is_taken_over(app: HaloBuzzApp, cluster: Cluster) -> None:
    first = await cluster.start("worker")
    second = await cluster.start("worker")
    run = await _claim(app, "tests.jobs.sample:slow")
    await cluster.broker.publish(job_message(run))

    def started() -> list[int]:
        return [int(p.name.split("-")[1]) for p in cluster.job_dir.glob("started-*")]

    (pid,) = await wait_for(started, timeout=DEADLINE)
    victim, survivor = (first, second) if pid == first.pid else (second, first)
    assert pid == victim.pid
    victim.send_signal(signal.SIGKILL)
    await victim.wait()

    await wait_for(lambda: survivor.pid in started(), timeout=DEADLINE)
    (cluster.job_dir / "release").write_text("")

    async def finished() -> JobRun | None:
        row = await _run(app, run.id)
        return row if row is not None and row.status != "running" else None

    row = await wait_for(finished, timeout=DEADLINE)
    assert row.status == "succeeded"
    assert row.result == {"pid": survivor.pid}
    await wait_for(_drained(cluster.broker), timeout=DEADLINE)


async def test_a_failing_job_is_dead_lettered_and_retried_through_the_broker(
    app: HaloBuzzApp, cluster: Cluster
) -> None:
    await cluster.start("worker")
    await cluster.start("worker")
    run = await _claim(app, "tests.jobs.sample:fail_until_released")
    await cluster.broker.publish(job_message(run))

    async def dead() -> DeadLetterJob | None:
        async with app.runtime.db.session(write=False) as s:
            row: DeadLetterJob | None = await s.scalar(
                select(DeadLetterJob).where(DeadLetterJob.name == "tests.jobs.sample:fail_until_released")
            )
            return row

    letter = await wait_for(dead, timeout=DEADLINE)
    assert letter.kind == "job" and letter.attempts == 3
    assert "not released yet" in letter.error
    failed = await _run(app, run.id)
    assert failed is not None and failed.status == "failed" and failed.attempts == 3
    assert len((cluster.job_dir / "attempts").read_text().split()) == 3  # retried, then given up

    (cluster.job_dir / "release").write_text("")
    admin = await _admin(app)
    from tests.conftest import client_for

    async with client_for(app) as client:
        r = await client.post(f"/api/v1/admin/jobs/dead-letter/{letter.id}/retry", headers=admin)
        assert r.status_code == 202, r.text
        again = await client.post(f"/api/v1/admin/jobs/dead-letter/{letter.id}/retry", headers=admin)
        assert again.status_code == 409

    async def succeeded() -> JobRun | None:
        row = await _run(app, run.id)
        return row if row is not None and row.status == "succeeded" else None

    row = await wait_for(succeeded, timeout=DEADLINE)
    assert row.result is not None and row.result["pid"] in [p.pid for p in cluster.procs]
    assert len((cluster.job_dir / "attempts").read_text().split()) == 4


async def test_scheduler_process_queues_slots_for_the_workers(app: HaloBuzzApp, cluster: Cluster) -> None:
    await cluster.start("scheduler")
    await cluster.start("worker")
    await cluster.start("worker")
    job = "halobuzz.payments.reconcile:reconcile_pending"

    async def finished() -> list[JobRun]:
        async with app.runtime.db.session(write=False) as s:
            runs = list((await s.execute(select(JobRun).where(JobRun.job == job))).scalars())
        return [r for r in runs if r.status != "running"]

    (run,) = await wait_for(finished, timeout=DEADLINE)
    assert run.status == "succeeded"
    assert run.attempts == 1
    await wait_for(_drained(cluster.broker), timeout=DEADLINE)
