"""Sending queued channel deliveries: one queue per channel, bounded concurrency, backoff.

Consumers only insert ``notification_delivery`` rows, so a slow or failing provider never holds up
event processing. Each channel runs its own loop here: it claims due rows (a lease on
``next_attempt_at``, ``SKIP LOCKED`` on PostgreSQL, so several workers share the queue), sends up to
``NOTIFICATIONS_CONCURRENCY_PER_CHANNEL`` at once with a per-request timeout, and records each
outcome. 429/5xx and network failures are retried with exponential backoff, waiting at least the
provider's ``Retry-After``; a 429 with ``Retry-After`` also pauses that channel (only that one) until
then. A provider saying the target is gone (web push 404/410, FCM ``UNREGISTERED``) removes the
subscription or device and cancels the delivery.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from prometheus_client import Counter
from sqlalchemy import delete, select, update

from halobuzz.accounts.models import User
from halobuzz.core.clock import utcnow
from halobuzz.core.events import backoff
from halobuzz.core.tasks import cancel_and_wait
from halobuzz.notifications import catalog, templates
from halobuzz.notifications.channels.base import Channel, Outgoing, Recipient, Result, Target
from halobuzz.notifications.channels.email import EmailChannel
from halobuzz.notifications.channels.fcm import FcmChannel
from halobuzz.notifications.channels.sms import SmsChannel
from halobuzz.notifications.channels.webpush import WebPushChannel
from halobuzz.notifications.models import MobileDevice, NotificationDelivery, WebPushSubscription

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)

ATTEMPTS = Counter(
    "halobuzz_notification_deliveries_total", "Channel delivery attempts by outcome", ["channel", "outcome"]
)

_EXTRA = "notification-channels"
_wakers: set[asyncio.Event] = set()


def wake_all() -> None:
    """Wake this process's dispatchers: new deliveries are due."""
    for waker in list(_wakers):
        waker.set()


class Channels:
    """The channels of one process, built once from settings (``runtime.extras``)."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.http = httpx.AsyncClient(timeout=settings.notifications.http_timeout_seconds, follow_redirects=False)
        built: list[Channel] = [
            WebPushChannel(settings, self.http),
            EmailChannel(runtime.mailer),
            SmsChannel(settings, self.http),
            FcmChannel(settings, self.http),
        ]
        self.by_name: dict[str, Channel] = {c.name: c for c in built}

    def available(self) -> frozenset[str]:
        return frozenset(name for name, c in self.by_name.items() if c.available())

    async def close(self) -> None:
        for channel in self.by_name.values():
            await channel.close()
        await self.http.aclose()


def channels_of(runtime: Runtime) -> Channels:
    found = runtime.extras.get(_EXTRA)
    if isinstance(found, Channels):
        return found
    made = Channels(runtime)
    runtime.extras[_EXTRA] = made
    return made


def link_for(base: str, type_: str, data: dict[str, Any]) -> str:
    """Where a notification leads in the web app."""
    base = base.rstrip("/")
    stream_id = data.get("stream_id")
    if type_ in (catalog.STREAM_LIVE, catalog.RAID_INCOMING, catalog.GIFT_RECEIVED) and stream_id:
        return f"{base}/streams/{stream_id}"
    if type_ == catalog.PAYMENT_COMPLETED:
        return f"{base}/wallet"
    return f"{base}/account"


@dataclass(slots=True)
class _Work:
    row: NotificationDelivery
    message: Outgoing | None  # None: nothing to send to (cancelled)
    reason: str = ""


class Dispatcher:
    """Sends due deliveries of every available channel, each channel in its own loop."""

    def __init__(self, runtime: Runtime, *, channels: Channels | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.notifications
        self.channels = channels or channels_of(runtime)
        self.wake = asyncio.Event()
        self.paused_until: dict[str, float] = {}

    # ------------------------------------------------------------------ claiming

    async def _claim(self, channel: str, now: datetime, limit: int) -> list[_Work]:
        lease = now + timedelta(seconds=self.settings.http_timeout_seconds * 2 + 30)
        async with self.runtime.db.session() as s:
            due = (
                select(NotificationDelivery.id)
                .where(
                    NotificationDelivery.channel == channel,
                    NotificationDelivery.status == "pending",
                    NotificationDelivery.next_attempt_at <= now,
                )
                .order_by(NotificationDelivery.next_attempt_at)
                .limit(limit)
            )
            if not self.runtime.db.is_sqlite:
                due = due.with_for_update(skip_locked=True)
            ids = list(await s.scalars(due))
            if not ids:
                return []
            await s.execute(
                update(NotificationDelivery)
                .where(NotificationDelivery.id.in_(ids))
                .values(next_attempt_at=lease)
                .execution_options(synchronize_session=False)
            )
            rows = list(await s.scalars(select(NotificationDelivery).where(NotificationDelivery.id.in_(ids))))
            users = {u.id: u for u in await s.scalars(select(User).where(User.id.in_({r.user_id for r in rows})))}
            targets = await self._targets(s, channel, rows)
        return [self._prepare(row, users.get(row.user_id), targets) for row in rows]

    async def _targets(self, s: Any, channel: str, rows: list[NotificationDelivery]) -> dict[str, Target]:
        ids = [uuid.UUID(r.target) for r in rows if r.target not in (catalog.EMAIL, catalog.SMS)]
        if not ids:
            return {}
        if channel == catalog.WEB_PUSH:
            subs = await s.scalars(select(WebPushSubscription).where(WebPushSubscription.id.in_(ids)))
            return {str(x.id): Target(x.id, endpoint=x.endpoint, p256dh=x.p256dh, auth=x.auth) for x in subs}
        devices = await s.scalars(select(MobileDevice).where(MobileDevice.id.in_(ids)))
        return {str(d.id): Target(d.id, token=d.token) for d in devices}

    def _prepare(self, row: NotificationDelivery, user: User | None, targets: dict[str, Target]) -> _Work:
        if user is None or user.status in ("banned", "deleted"):
            return _Work(row, None, "the account is closed")
        target = targets.get(row.target)
        if row.channel in (catalog.WEB_PUSH, catalog.MOBILE_PUSH) and target is None:
            return _Work(row, None, "the subscription or device was removed")
        recipient = Recipient(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            email=user.email,
            email_verified=user.email_verified_at is not None,
            phone=user.phone,
            language=user.language,
            timezone=user.timezone,
        )
        base = self.runtime.settings.auth.public_url
        settings_url = base.rstrip("/") + "/account"
        if row.type == "digest":
            items = [
                {
                    "when": templates.local_time(datetime.fromisoformat(i["created_at"]), user.timezone),
                    **_texts(i["type"], i["data"], user.language),
                }
                for i in row.data.get("items", [])
            ]
            message = Outgoing(
                delivery_id=row.id,
                recipient=recipient,
                type="digest",
                title=templates.subject("digest", language=user.language, count=len(items)),
                body="",
                data={"count": len(items)},
                url=base,
            )
            message.subject = message.title
            message.text = templates.digest_text(
                language=user.language, name=user.display_name, items=items, url=base, settings_url=settings_url
            )
            return _Work(row, message)
        text = templates.render(row.type, row.data, language=user.language)
        url = link_for(base, row.type, row.data)
        message = Outgoing(
            delivery_id=row.id,
            recipient=recipient,
            type=row.type,
            title=text.title,
            body=text.body,
            data=row.data,
            url=url,
            notification_id=row.notification_id,
            target=target,
        )
        if row.channel == catalog.EMAIL:
            message.subject = templates.subject("email", language=user.language, title=text.title)
            message.text = templates.email_text(
                language=user.language,
                name=user.display_name,
                title=text.title,
                body=text.body,
                url=url,
                settings_url=settings_url,
            )
        return _Work(row, message)

    # ------------------------------------------------------------------ sending

    async def run_once(self, channel: str, *, now: datetime | None = None) -> int:
        """Send the channel's due deliveries once (up to a few batches' worth); the number attempted."""
        impl = self.channels.by_name.get(channel)
        if impl is None or not impl.available():
            return 0
        if self.paused_until.get(channel, 0.0) > time.monotonic():
            return 0
        now = now or utcnow()
        limit = self.settings.concurrency_per_channel * 4
        work = await self._claim(channel, now, limit)
        if not work:
            return 0
        gate = asyncio.Semaphore(self.settings.concurrency_per_channel)

        async def attempt(item: _Work) -> Result:
            if item.message is None:
                return Result(ok=False, target_gone=False, error=item.reason)
            async with gate:
                try:
                    return await asyncio.wait_for(
                        impl.send(item.message), timeout=self.settings.http_timeout_seconds + 5
                    )
                except TimeoutError:
                    return Result(ok=False, retry=True, error="timed out")
                except Exception as exc:  # a bug in a channel must not kill the loop
                    log.exception("notification_channel_failed", channel=channel)
                    return Result(ok=False, retry=True, error=f"{type(exc).__name__}: {exc}"[:1000])

        results = await asyncio.gather(*(attempt(item) for item in work))
        await self._record(channel, list(zip(work, results, strict=True)))
        return len(work)

    async def _record(self, channel: str, outcomes: list[tuple[_Work, Result]]) -> None:
        now = utcnow()
        s_ = self.settings
        gone: set[str] = set()
        async with self.runtime.db.session() as s:
            for item, result in outcomes:
                row = item.row
                attempt = row.attempts + (0 if item.message is None else 1)
                values: dict[str, Any] = {
                    "attempts": attempt,
                    "last_status_code": result.status_code,
                    "last_error": result.error,
                }
                if item.message is None:
                    outcome = "cancelled"
                    values.update(status="cancelled")
                elif result.ok:
                    outcome = "sent"
                    values.update(status="sent", sent_at=now, provider_id=result.provider_id, last_error=None)
                elif result.target_gone:
                    outcome = "target_gone"
                    values.update(status="cancelled")
                    gone.add(row.target)
                elif result.retry and attempt < s_.max_attempts:
                    outcome = "retry"
                    delay = backoff(attempt, base=s_.backoff_base_seconds, cap=s_.backoff_max_seconds)
                    if result.retry_after is not None:
                        delay = min(max(delay, result.retry_after), max(s_.backoff_max_seconds, result.retry_after))
                        if result.status_code == 429:  # the provider asks everyone to slow down
                            self.paused_until[channel] = time.monotonic() + result.retry_after
                    values.update(status="pending", next_attempt_at=now + timedelta(seconds=delay))
                else:
                    outcome = "failed"
                    values.update(status="failed")
                ATTEMPTS.labels(channel=channel, outcome=outcome).inc()
                await s.execute(
                    update(NotificationDelivery)
                    .where(NotificationDelivery.id == row.id)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                log.info(
                    "notification_delivery",
                    channel=channel,
                    delivery_id=str(row.id),
                    outcome=outcome,
                    attempt=attempt,
                    status_code=result.status_code,
                    error=result.error,
                )
            ids = [uuid.UUID(t) for t in gone if t not in (catalog.EMAIL, catalog.SMS)]
            if ids and channel == catalog.WEB_PUSH:
                await s.execute(delete(WebPushSubscription).where(WebPushSubscription.id.in_(ids)))
            elif ids and channel == catalog.MOBILE_PUSH:
                await s.execute(delete(MobileDevice).where(MobileDevice.id.in_(ids)))

    # ------------------------------------------------------------------ loops

    async def _loop(self, channel: str) -> None:
        poll = self.settings.dispatch_poll_seconds
        waker = asyncio.Event()
        _wakers.add(waker)
        try:
            while True:
                waker.clear()
                try:
                    while await self.run_once(channel) > 0:
                        pass
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("notification_dispatch_failed", channel=channel)
                paused = self.paused_until.get(channel, 0.0) - time.monotonic()
                wait = max(paused, 0.01) if paused > 0 else poll
                with suppress(TimeoutError):
                    await asyncio.wait_for(waker.wait(), timeout=wait)
        finally:
            _wakers.discard(waker)

    async def run(self) -> None:
        """Run every channel's loop until cancelled."""
        self.runtime.extras["notification-dispatcher"] = self
        loops = [asyncio.create_task(self._loop(name), name=f"notify-{name}") for name in catalog.DELIVERY_CHANNELS]
        try:
            await asyncio.gather(*loops)
        finally:
            await cancel_and_wait(loops)
            await self.channels.close()
            self.runtime.extras.pop(_EXTRA, None)


def _texts(type_: str, data: dict[str, Any], language: str) -> dict[str, str]:
    text = templates.render(type_, data, language=language)
    return {"title": text.title, "body": text.body}
