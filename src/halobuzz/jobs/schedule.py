"""The job scheduler: timezone-aware slots, each slot fired once across every scheduler.

A slot is claimed by inserting ``job_run(job, scheduled_for)`` — unique — before the job runs, so
two schedulers over the same database never fire the same slot twice (the loser's insert fails).
Jobs are resolved lazily by dotted path; a job whose module or function does not exist yet is
logged and skipped. Each job is ``async def job(runtime, *, scheduled_for) -> dict`` and is
idempotent for its slot. A failed run is retried with exponential backoff (as a new attempt of the
same slot row); one that exhausts its retries lands in ``dead_letter_job``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import JSON, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from halobuzz.core.clock import utcnow
from halobuzz.core.db import Base
from halobuzz.core.events import DeadLetterJob, backoff, resolve_path
from halobuzz.core.ids import uuid7

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)


class JobRun(Base):
    """One fired slot of one job; the unique (job, scheduled_for) is the cross-scheduler lock."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "scheduled_for"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    job: Mapped[str] = mapped_column(String(200))
    scheduled_for: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed | skipped
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(2000))


@dataclass(frozen=True)
class Entry:
    """A job and when it runs: daily at ``at`` (HH:MM, local time) or every ``every_minutes``."""

    job: str
    at: str | None = None
    every_minutes: int | None = None

    def latest_slot(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The most recent slot at or before ``now`` (UTC-aware result)."""
        if self.every_minutes:
            step = self.every_minutes * 60
            epoch = int(now.timestamp())
            return datetime.fromtimestamp(epoch - epoch % step, tz=now.tzinfo)
        assert self.at is not None
        hour, minute = (int(p) for p in self.at.split(":"))
        local = now.astimezone(tz)
        slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if slot > local:
            slot = (local - timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
        # Round-trip through UTC to settle a DST-gap/fold wall time on a real instant.
        return slot.astimezone(now.tzinfo)

    @property
    def describe(self) -> str:
        return f"every {self.every_minutes} minutes" if self.every_minutes else f"daily at {self.at}"


SCHEDULE: list[Entry] = [
    Entry("halobuzz.economy.og:distribute_daily_bonus", at="00:00"),
    Entry("halobuzz.economy.festivals:activate_festivals", at="01:00"),
    Entry("halobuzz.economy.thrones:expire_thrones", at="02:00"),
    Entry("halobuzz.jobs.cleanup:cleanup", at="03:00"),
    Entry("halobuzz.jobs.analytics:daily_report", at="04:00"),
    Entry("halobuzz.payments.reconcile:reconcile_pending", every_minutes=5),
    Entry("halobuzz.notifications.digest:send_digests", every_minutes=15),
    Entry("halobuzz.ai.monitor:analyze_live_streams", every_minutes=1),
]

# A slot missed by more than this (scheduler down) is not fired late; the next one is.
GRACE = timedelta(hours=1)


async def run_job_now(runtime: Runtime, job: str, *, scheduled_for: datetime) -> dict[str, Any] | None:
    """Resolve and run a job once (no slot claim); None when the job does not exist yet."""
    fn = resolve_path(job)
    if fn is None:
        return None
    result: dict[str, Any] = await fn(runtime, scheduled_for=scheduled_for)
    return result


class Scheduler:
    """Fires due slots of ``entries``; any number of schedulers may run over one database."""

    def __init__(
        self,
        runtime: Runtime,
        entries: list[Entry] | None = None,
        *,
        max_attempts: int = 3,
        backoff_base_seconds: float = 5.0,
        broker: bool = False,
    ) -> None:
        self.runtime = runtime
        self.entries = list(SCHEDULE if entries is None else entries)
        self.tz = ZoneInfo(runtime.settings.jobs.timezone)
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        # With a broker the scheduler only claims slots; workers run them (halobuzz.jobs.worker).
        self.broker = broker

    async def tick(self, now: datetime | None = None) -> list[JobRun]:
        """Claim and run every due slot this scheduler wins; the runs it fired."""
        now = now or utcnow()
        fired: list[JobRun] = []
        for entry in self.entries:
            slot = entry.latest_slot(now, self.tz)
            if now - slot > GRACE:
                continue
            run = await self._claim(entry.job, slot, now)
            if run is not None and self.broker:
                from halobuzz.jobs.worker import get_broker, job_message

                await get_broker(self.runtime).publish(job_message(run))
                fired.append(run)
            elif run is not None:
                fired.append(await self._run(run))
        return fired

    async def _claim(self, job: str, slot: datetime, now: datetime) -> JobRun | None:
        try:
            async with self.runtime.db.session() as s:
                run = JobRun(job=job, scheduled_for=slot, status="running", attempts=0, started_at=now)
                s.add(run)
                await s.flush()
        except IntegrityError:
            return None
        return run

    async def _run(self, run: JobRun) -> JobRun:
        status, result, error = "failed", None, None
        attempts = 0
        while attempts < self.max_attempts:
            attempts += 1
            try:
                result = await run_job_now(self.runtime, run.job, scheduled_for=run.scheduled_for)
                status = "succeeded" if result is not None else "skipped"
                error = None
                break
            except Exception as exc:
                error = repr(exc)[:2000]
                log.warning("job_failed", job=run.job, attempt=attempts, error=error)
                if attempts < self.max_attempts:
                    await asyncio.sleep(backoff(attempts, base=self.backoff_base_seconds, cap=300.0))
        log.info("job_run", job=run.job, scheduled_for=run.scheduled_for.isoformat(), status=status, result=result)
        async with self.runtime.db.session() as s:
            row = await s.get(JobRun, run.id)
            assert row is not None
            row.status, row.result, row.error = status, result, error
            row.attempts, row.finished_at = attempts, utcnow()
            if status == "failed":
                s.add(
                    DeadLetterJob(
                        kind="job",
                        name=run.job,
                        event_id=None,
                        payload={"scheduled_for": run.scheduled_for.isoformat()},
                        attempts=attempts,
                        error=error or "",
                        failed_at=utcnow(),
                    )
                )
            await s.flush()
            return row

    async def run(self, *, interval_seconds: float = 20.0) -> None:
        """Tick until cancelled."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler_tick_failed")
            await asyncio.sleep(interval_seconds)


async def list_jobs(runtime: Runtime) -> list[dict[str, Any]]:
    """The schedule with each job's last run."""
    out: list[dict[str, Any]] = []
    async with runtime.db.session(write=False) as s:
        for entry in SCHEDULE:
            last = await s.scalar(
                select(JobRun).where(JobRun.job == entry.job).order_by(JobRun.scheduled_for.desc()).limit(1)
            )
            out.append(
                {
                    "job": entry.job,
                    "schedule": entry.describe,
                    "timezone": runtime.settings.jobs.timezone,
                    "last_run": None
                    if last is None
                    else {
                        "scheduled_for": last.scheduled_for,
                        "status": last.status,
                        "started_at": last.started_at,
                        "finished_at": last.finished_at,
                        "result": last.result,
                        "error": last.error,
                    },
                }
            )
    return out


async def rerun(runtime: Runtime, job: str, *, scheduled_for: datetime) -> JobRun:
    """Run one slot of a job again (an admin's retry of a dead letter), updating its run row."""
    async with runtime.db.session() as s:
        run = await s.scalar(select(JobRun).where(JobRun.job == job, JobRun.scheduled_for == scheduled_for))
        if run is None:
            run = JobRun(job=job, scheduled_for=scheduled_for, status="running", attempts=0, started_at=utcnow())
            s.add(run)
        else:
            run.status, run.started_at, run.finished_at = "running", utcnow(), None
        await s.flush()
    return await Scheduler(runtime, entries=[])._run(run)
