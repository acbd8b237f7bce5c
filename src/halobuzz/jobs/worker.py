"""Background work through the broker (``BROKER_URL`` set; docs/events.md).

- The relay of each ``halobuzz worker`` publishes committed outbox rows as ``event`` messages and
  marks them dispatched (published); several relays share the outbox through its claim lease.
- Workers run every consumer of an ``event`` message (each consumer once per event, through the
  ``processed_event`` marks); a consumer that fails gets its own ``consumer`` message, retried with
  exponential backoff and dead-lettered (kind ``consumer``) once ``JOBS_MAX_ATTEMPTS`` is reached.
- The scheduler claims a slot (the unique ``job_run`` row) and publishes a ``job`` message;
  ``enqueue_job`` does the same for ad-hoc work. A worker runs the job unless its run row is no
  longer ``running`` (a duplicate delivery); failures are retried, then dead-lettered (kind ``job``).
- An admin's retry of a dead letter goes back through the broker (``requeue_job`` / the outbox).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from halobuzz.core import events
from halobuzz.core.broker import Broker, Delivery, make_broker
from halobuzz.core.clock import utcnow
from halobuzz.core.events import DeadLetterJob, Event, OutboxEvent, Relay, backoff, deliver

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime
    from halobuzz.jobs.schedule import JobRun

log = structlog.get_logger(__name__)

BACKOFF_CAP_SECONDS = 600.0


def get_broker(runtime: Runtime) -> Broker:
    """This process's broker client for ``BROKER_URL`` (closed with the runtime)."""
    broker = runtime.extras.get("broker")
    if broker is None:
        url = runtime.settings.broker_url
        if not url:
            raise RuntimeError("BROKER_URL is not set")
        jobs = runtime.settings.jobs
        broker = make_broker(url, stream=jobs.broker_stream, claim_idle_seconds=jobs.broker_claim_idle_seconds)
        runtime.extras["broker"] = broker
    assert isinstance(broker, Broker)
    return broker


class BrokerRelay(Relay):
    """The outbox relay that publishes each committed event to the broker instead of delivering it."""

    async def _dispatch(self, row: OutboxEvent) -> bool:
        evt = Event.from_row(row)
        try:
            await get_broker(self.runtime).publish({"kind": "event", "event": evt.to_envelope()})
        except Exception as exc:
            log.warning("broker_publish_failed", event_id=str(evt.id), error=repr(exc))
            attempts = row.attempts + 1
            delay = backoff(attempts, base=self.settings.backoff_base_seconds, cap=self.settings.backoff_max_seconds)
            values: dict[str, Any] = {"attempts": attempts, "last_error": repr(exc)[:1000]}
            values["next_attempt_at"] = utcnow() + timedelta(seconds=delay)
        else:
            values = {"dispatched_at": utcnow(), "attempts": row.attempts + 1, "last_error": None}
        async with self.runtime.db.session() as s:
            await s.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == evt.id, OutboxEvent.dispatched_at.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        return "dispatched_at" in values


class Worker:
    """Handles broker messages: events fan out to consumers, consumer retries, jobs."""

    def __init__(self, runtime: Runtime, broker: Broker | None = None) -> None:
        self.runtime = runtime
        self.broker = broker or get_broker(runtime)
        jobs = runtime.settings.jobs
        self.max_attempts = jobs.max_attempts
        self.backoff_base = jobs.backoff_base_seconds

    def _delay(self, attempt: int) -> float:
        return backoff(attempt, base=self.backoff_base, cap=BACKOFF_CAP_SECONDS)

    async def run(self) -> None:
        """Consume until cancelled; a lost broker connection is retried after a pause."""
        while True:
            try:
                await self.broker.consume(self.handle, concurrency=self.runtime.settings.jobs.worker_concurrency)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broker_consume_failed")
                await asyncio.sleep(1.0)

    async def handle(self, msg: Delivery) -> None:
        kind = msg.body.get("kind")
        if kind == "event":
            await self._event(msg)
        elif kind == "consumer":
            await self._consumer(msg)
        elif kind == "job":
            await self._job(msg)
        else:
            log.warning("broker_unknown_kind", kind=kind)
            await msg.ack()

    async def _event(self, msg: Delivery) -> None:
        env = msg.body["event"]
        evt = Event.from_envelope(env)
        for item in events.consumers_for(evt.type):
            try:
                await deliver(self.runtime, evt, item)
            except Exception as exc:
                log.warning("consumer_failed", consumer=item.name, event_id=str(evt.id), attempt=1, error=repr(exc))
                await self._fail_consumer(item.name, env, 1, repr(exc))
        await msg.ack()

    async def _consumer(self, msg: Delivery) -> None:
        body = msg.body
        env, attempt = body["event"], int(body["attempt"])
        item = events.get_consumer(body["name"])
        if item is None:
            log.warning("consumer_missing", consumer=body["name"])
            await msg.ack()
            return
        try:
            await deliver(self.runtime, Event.from_envelope(env), item)
        except Exception as exc:
            log.warning("consumer_failed", consumer=item.name, event_id=env["id"], attempt=attempt, error=repr(exc))
            if attempt >= self.max_attempts:
                await self._dead_letter_consumer(item.name, env, attempt, repr(exc))
                await msg.ack()
            else:
                await msg.retry_later({**body, "attempt": attempt + 1}, self._delay(attempt))
            return
        await msg.ack()

    async def _fail_consumer(self, name: str, env: dict[str, Any], attempt: int, error: str) -> None:
        if attempt >= self.max_attempts:
            await self._dead_letter_consumer(name, env, attempt, error)
        else:
            body = {"kind": "consumer", "name": name, "event": env, "attempt": attempt + 1}
            await self.broker.publish(body, delay=self._delay(attempt))

    async def _dead_letter_consumer(self, name: str, env: dict[str, Any], attempts: int, error: str) -> None:
        async with self.runtime.db.session() as s:
            s.add(
                DeadLetterJob(
                    kind="consumer",
                    name=name,
                    event_id=Event.from_envelope(env).id,
                    payload=env,
                    attempts=attempts,
                    error=error[:2000],
                    failed_at=utcnow(),
                )
            )

    async def _job(self, msg: Delivery) -> None:
        from halobuzz.jobs.schedule import JobRun, run_job_now

        body = msg.body
        job, attempt = body["job"], int(body["attempt"])
        slot = datetime.fromisoformat(body["scheduled_for"])
        async with self.runtime.db.session(write=False) as s:
            run = await s.get(JobRun, uuid.UUID(body["run_id"]))
        if run is None or run.status != "running":
            await msg.ack()  # a duplicate delivery of a run that already finished
            return
        try:
            result = await run_job_now(self.runtime, job, scheduled_for=slot)
        except Exception as exc:
            error = repr(exc)[:2000]
            log.warning("job_failed", job=job, attempt=attempt, error=error)
            if attempt >= self.max_attempts:
                await _finish(self.runtime, run, "failed", None, error, attempt, dead_letter=True)
                await msg.ack()
            else:
                await _finish(self.runtime, run, "running", None, error, attempt, dead_letter=False)
                await msg.retry_later({**body, "attempt": attempt + 1}, self._delay(attempt))
            return
        status = "succeeded" if result is not None else "skipped"
        await _finish(self.runtime, run, status, result, None, attempt, dead_letter=False)
        log.info("job_run", job=job, scheduled_for=body["scheduled_for"], status=status, result=result)
        await msg.ack()


async def _finish(
    runtime: Runtime,
    run: JobRun,
    status: str,
    result: dict[str, Any] | None,
    error: str | None,
    attempts: int,
    *,
    dead_letter: bool,
) -> None:
    from halobuzz.jobs.schedule import JobRun

    async with runtime.db.session() as s:
        row = await s.get(JobRun, run.id, with_for_update=True)
        if row is None:
            return
        row.status, row.result, row.error, row.attempts = status, result, error, attempts
        if status != "running":
            row.finished_at = utcnow()
        if dead_letter:
            s.add(
                DeadLetterJob(
                    kind="job",
                    name=row.job,
                    event_id=None,
                    payload={"scheduled_for": row.scheduled_for.isoformat()},
                    attempts=attempts,
                    error=error or "",
                    failed_at=utcnow(),
                )
            )


def job_message(run: JobRun) -> dict[str, Any]:
    return {
        "kind": "job",
        "job": run.job,
        "scheduled_for": run.scheduled_for.isoformat(),
        "run_id": str(run.id),
        "attempt": 1,
    }


async def enqueue_job(runtime: Runtime, job: str, *, scheduled_for: datetime | None = None) -> JobRun | None:
    """Claim ``job``'s slot (now unless given) and queue it for a worker; None if already claimed."""
    from halobuzz.jobs.schedule import JobRun

    slot = scheduled_for or utcnow()
    try:
        async with runtime.db.session() as s:
            run = JobRun(job=job, scheduled_for=slot, status="running", attempts=0, started_at=utcnow())
            s.add(run)
            await s.flush()
    except IntegrityError:
        return None
    await get_broker(runtime).publish(job_message(run))
    return run


async def requeue_job(runtime: Runtime, job: str, *, scheduled_for: datetime) -> JobRun:
    """Run one slot again through the broker (an admin's retry of a dead letter)."""
    from sqlalchemy import select

    from halobuzz.jobs.schedule import JobRun

    async with runtime.db.session() as s:
        run = await s.scalar(
            select(JobRun).where(JobRun.job == job, JobRun.scheduled_for == scheduled_for).with_for_update()
        )
        if run is None:
            run = JobRun(job=job, scheduled_for=scheduled_for, status="running", attempts=0, started_at=utcnow())
            s.add(run)
        else:
            run.status, run.started_at, run.finished_at, run.error = "running", utcnow(), None, None
        await s.flush()
    await get_broker(runtime).publish(job_message(run))
    return run


async def run_worker(runtime: Runtime) -> None:
    """The consuming side of ``halobuzz worker``: runs until cancelled."""
    await Worker(runtime).run()


__all__ = ["BrokerRelay", "Worker", "enqueue_job", "get_broker", "requeue_job", "run_worker"]
