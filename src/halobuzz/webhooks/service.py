"""Registering endpoints, fanning events out to them, and delivering with signatures and retries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.core import events
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import InvalidInput, NotFound
from halobuzz.core.events import EVENT_TYPES, DeadLetterJob, Event
from halobuzz.core.pagination import decode_cursor, encode_cursor
from halobuzz.webhooks.models import WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)
SIGNATURE_HEADER = "X-HaloBuzz-Signature"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def validate_url(url: str, *, production: bool) -> str:
    """https anywhere; http only to this machine and never in production."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS and not production:
        return url
    raise InvalidInput(
        "the URL must be https (http only to 127.0.0.1/localhost outside production)", code="invalid_webhook_url"
    )


async def create_endpoint(
    *,
    session: AsyncSession,
    actor_id: uuid.UUID,
    url: str,
    secret: str,
    event_types: list[str],
    production: bool,
    description: str = "",
) -> WebhookEndpoint:
    """Register an endpoint for some of the event types."""
    validate_url(url, production=production)
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if not event_types or unknown:
        raise InvalidInput(
            "event_types must name known event types", code="invalid_event_types", details={"unknown": unknown}
        )
    endpoint = WebhookEndpoint(
        url=url,
        secret=secret,
        event_types=sorted(set(event_types)),
        description=description,
        created_by_id=actor_id,
        created_at=utcnow(),
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def list_endpoints(*, session: AsyncSession) -> list[WebhookEndpoint]:
    """Every endpoint, oldest first."""
    return list((await session.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.id))).scalars())


async def delete_endpoint(*, session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """Remove an endpoint and its delivery history."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("no such webhook", code="webhook_not_found")
    await session.delete(endpoint)
    await session.flush()


async def list_deliveries(
    *, session: AsyncSession, endpoint_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[WebhookDelivery], str | None]:
    """An endpoint's deliveries, newest first."""
    if await session.get(WebhookEndpoint, endpoint_id) is None:
        raise NotFound("no such webhook", code="webhook_not_found")
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        (after,) = decode_cursor(cursor, uuid.UUID)
        query = query.where(WebhookDelivery.id < after)
    rows = list((await session.execute(query)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None


_wakers: set[asyncio.Event] = set()


def wake_all() -> None:
    """Wake this process's dispatchers (new deliveries are due)."""
    for waker in list(_wakers):
        waker.set()


async def fan_out(runtime: Runtime, event: Event) -> None:
    """The consumer: one pending delivery per endpoint that wants this event type."""
    now = utcnow()
    async with runtime.db.session() as s:
        endpoints = [e for e in await list_endpoints(session=s) if event.type in e.event_types]
        existing = set(
            (await s.execute(select(WebhookDelivery.endpoint_id).where(WebhookDelivery.event_id == event.id))).scalars()
        )
        for endpoint in endpoints:
            if endpoint.id not in existing:
                s.add(
                    WebhookDelivery(
                        endpoint_id=endpoint.id,
                        event_id=event.id,
                        event_type=event.type,
                        envelope=event.to_envelope(),
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
    wake_all()


for _type in EVENT_TYPES:
    events.register_consumer(_type, name=f"webhooks:{_type}", target=fan_out)


class Dispatcher:
    """Sends due deliveries; failures are retried with exponential backoff, then recorded as dead."""

    def __init__(self, runtime: Runtime, *, poll_seconds: float | None = None) -> None:
        self.runtime = runtime
        jobs = runtime.settings.jobs
        self.poll_seconds = poll_seconds or max(jobs.relay_poll_seconds, 0.05)
        self.wake = asyncio.Event()

    async def run_once(self) -> int:
        """Attempt every due delivery once; the number attempted."""
        now = utcnow()
        jobs = self.runtime.settings.jobs
        async with self.runtime.db.session() as s:
            due = (
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.id)
                .limit(50)
            )
            if not self.runtime.db.is_sqlite:
                due = due.with_for_update(skip_locked=True)
            ids = list((await s.execute(due)).scalars())
            if ids:  # lease them, so another dispatcher does not send them at the same time
                await s.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(ids))
                    .values(next_attempt_at=now + timedelta(seconds=jobs.webhook_timeout_seconds * 2 + 30))
                    .execution_options(synchronize_session=False)
                )
            rows = (
                await s.execute(
                    select(WebhookDelivery, WebhookEndpoint)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .where(WebhookDelivery.id.in_(ids))
                )
            ).all()
            work = [(d.id, d.attempts, d.envelope, e.url, e.secret) for d, e in rows]
        if not work:  # nothing due: no HTTP client (building its TLS context costs milliseconds)
            return 0
        async with httpx.AsyncClient(timeout=jobs.webhook_timeout_seconds, follow_redirects=False) as http:
            for delivery_id, attempts, envelope, url, secret in work:
                await self._attempt(http, delivery_id, attempts + 1, envelope, url, secret)
        return len(work)

    async def _attempt(
        self,
        http: httpx.AsyncClient,
        delivery_id: uuid.UUID,
        attempt: int,
        envelope: dict[str, Any],
        url: str,
        secret: str,
    ) -> None:
        jobs = self.runtime.settings.jobs
        body = orjson.dumps(envelope)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "HaloBuzz-Webhooks/1",
            SIGNATURE_HEADER: sign(secret, body, timestamp=int(time.time())),
            "X-HaloBuzz-Event": str(envelope["type"]),
            "X-HaloBuzz-Delivery": str(delivery_id),
        }
        code: int | None = None
        error: str | None = None
        try:
            response = await http.post(url, content=body, headers=headers)
            code = response.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        now = utcnow()
        values: dict[str, Any] = {"attempts": attempt, "last_status_code": code, "last_error": error}
        async with self.runtime.db.session() as s:
            if error is None:
                values.update(status="succeeded", delivered_at=now)
            elif attempt >= jobs.max_attempts:
                values.update(status="failed")
                s.add(
                    DeadLetterJob(
                        kind="webhook",
                        name=url[:200],
                        event_id=uuid.UUID(str(envelope["id"])),
                        payload={"delivery_id": str(delivery_id), "envelope": envelope},
                        attempts=attempt,
                        error=error,
                        failed_at=now,
                    )
                )
            else:
                delay = events.backoff(attempt, base=jobs.backoff_base_seconds, cap=3600.0)
                values.update(next_attempt_at=now + timedelta(seconds=delay))
            await s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        log.info("webhook_attempt", delivery_id=str(delivery_id), attempt=attempt, status_code=code, error=error)

    async def run(self) -> None:
        """Loop until cancelled."""
        _wakers.add(self.wake)
        try:
            while True:
                self.wake.clear()
                try:
                    await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook_dispatch_failed")
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=self.poll_seconds)
                except TimeoutError:
                    continue
        finally:
            _wakers.discard(self.wake)


async def requeue(session: AsyncSession, *, dead: DeadLetterJob) -> None:
    """An admin's retry of a dead webhook delivery: pending again, due now."""
    delivery_id = uuid.UUID(str(dead.payload["delivery_id"]))
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(status="pending", attempts=0, next_attempt_at=utcnow(), last_error=None)
        .execution_options(synchronize_session=False)
    )
    dead.retried_at = utcnow()
    await session.flush()
