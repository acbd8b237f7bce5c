"""Preferences per type and channel, quiet hours in the user's timezone, per-language email over a
real SMTP server (aiosmtpd) with SMTP back-off, and the daily email digest job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from halobuzz.app import HaloBuzzApp
from halobuzz.core.clock import utcnow
from halobuzz.jobs.schedule import SCHEDULE, Scheduler
from halobuzz.notifications.dispatch import wake_all
from halobuzz.notifications.models import NotificationDelivery
from tests.accounts.conftest import SmtpServer, _Inbox
from tests.conftest import assert_error, client_for
from tests.events.conftest import jobs_settings, wait_for
from tests.notifications.conftest import (
    API,
    Provider,
    body_of,
    deliveries_of,
    emit,
    notification_settings,
    wait_delivery,
    wait_notified,
)
from tests.notifications.test_push_channels import Browser

PREFS = f"{API}/notifications/preferences"


async def test_preferences_have_defaults_merge_changes_and_refuse_bad_input(client: Any, make_user: Any) -> None:
    user = await make_user(timezone="Asia/Kathmandu")
    h = user.headers
    prefs = (await client.get(PREFS, headers=h)).json()
    assert prefs["types"]["stream_live"] == {
        "in_app": True,
        "web_push": True,
        "email": False,
        "sms": False,
        "mobile_push": True,
    }
    assert prefs["types"]["payment_completed"]["email"] is True
    assert prefs["quiet_hours"] is None and prefs["email_digest"] is False
    assert prefs["timezone"] == "Asia/Kathmandu"
    assert prefs["channels"]["in_app"] is True and prefs["channels"]["email"] is True
    assert prefs["channels"]["sms"] is False  # no SMS provider configured here

    r = await client.patch(
        PREFS,
        json={
            "types": {"gift_received": {"email": True, "web_push": False}},
            "quiet_hours": {"start": "22:00", "end": "07:00"},
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["types"]["gift_received"] == {**prefs["types"]["gift_received"], "email": True, "web_push": False}
    assert body["quiet_hours"] == {"start": "22:00", "end": "07:00"}

    # Two changes at once both land (the settings row is locked while merging).
    results = await asyncio.gather(
        client.patch(PREFS, json={"types": {"new_follower": {"mobile_push": False}}}, headers=h),
        client.patch(PREFS, json={"email_digest": True}, headers=h),
    )
    assert [r.status_code for r in results] == [200, 200]
    body = (await client.get(PREFS, headers=h)).json()
    assert body["types"]["new_follower"]["mobile_push"] is False
    assert body["types"]["gift_received"]["email"] is True
    assert body["email_digest"] is True and body["quiet_hours"] == {"start": "22:00", "end": "07:00"}

    for bad, code in (
        ({"types": {"no_such_type": {"email": True}}}, "invalid_preferences"),
        ({"types": {"stream_live": {"fax": True}}}, "invalid_input"),
        ({"types": {"stream_live": {"email": "yes"}}}, "invalid_input"),
        ({"types": {"moderation": {"in_app": False}}}, "preference_locked"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "invalid_input"),
        ({"quiet_hours": {"start": "7", "end": "08:00"}}, "invalid_input"),
        ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, "invalid_quiet_hours"),
        ({"quiet_hours": {"start": "07:00"}}, "invalid_input"),
        ({"email_digest": "sometimes"}, "invalid_input"),
        ({"surprise": 1}, "invalid_input"),
    ):
        assert_error(await client.patch(PREFS, json=bad, headers=h), 422, code)
    assert (await client.get(PREFS, headers=h)).json() == body  # nothing changed

    r = await client.patch(PREFS, json={"quiet_hours": None, "types": {"gift_received": {"email": False}}}, headers=h)
    assert r.json()["quiet_hours"] is None
    assert r.json()["types"]["gift_received"]["email"] is False
    assert_error(await client.get(PREFS), 401, "not_authenticated")


async def test_quiet_hours_hold_push_until_they_end_while_in_app_arrives(
    app: HaloBuzzApp, client: Any, make_user: Any, serve: Callable[..., Any]
) -> None:
    service = Provider()

    async def push(request: Request) -> Response:
        service.record(request, await request.body())
        return Response(status_code=201)

    base = await serve([Route("/push/{token}", push, methods=["POST"])])
    sleeper, fan = await make_user(timezone="America/Los_Angeles"), await make_user()
    browser = Browser()
    r = await client.post(
        f"{API}/notifications/push-subscriptions", json=browser.subscription(f"{base}/push/q"), headers=sleeper.headers
    )
    assert r.status_code == 201
    local = utcnow().astimezone(ZoneInfo("America/Los_Angeles"))
    start, end = (local - timedelta(hours=1)).strftime("%H:%M"), (local + timedelta(hours=2)).strftime("%H:%M")
    r = await client.patch(PREFS, json={"quiet_hours": {"start": start, "end": end}}, headers=sleeper.headers)
    assert r.status_code == 200

    await client.post(f"{API}/users/{sleeper.id}/follow", headers=fan.headers)
    [stored] = await wait_notified(app, sleeper.id, "new_follower")  # in-app still arrives
    [held] = await deliveries_of(app, sleeper.id, "web_push")
    assert held.status == "pending" and held.attempts == 0
    assert held.held_until is not None and held.next_attempt_at == held.held_until
    ends = datetime.combine(
        (local + timedelta(hours=2)).date(), (local + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    ).replace(tzinfo=ZoneInfo("America/Los_Angeles"))
    assert held.held_until == ends  # the end of the quiet hours, in the user's zone
    assert service.requests == []

    # When the quiet hours are over, the push goes out.
    async with app.runtime.db.session() as s:
        await s.execute(
            update(NotificationDelivery).where(NotificationDelivery.id == held.id).values(next_attempt_at=utcnow())
        )
    wake_all()
    sent = await wait_delivery(app, sleeper.id, "web_push", lambda d: d.status == "sent")
    assert sent.notification_id == stored.id
    assert browser.decrypt(service.requests[0]["body"])["title"] == "New follower"


class _FlakyInbox(_Inbox):
    """Answers the first message with a temporary failure (451), then accepts."""

    def __init__(self, server: SmtpServer, failures: int) -> None:
        super().__init__(server)
        self.failures = failures

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.failures > 0:
            self.failures -= 1
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def flaky_smtp() -> Any:
    from aiosmtpd.controller import Controller

    from tests.accounts.conftest import free_port

    server = SmtpServer(port=free_port())
    controller = Controller(_FlakyInbox(server, failures=1), hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def _payment(user: Any, coins: int = 500) -> dict[str, Any]:
    return {
        "payment_intent_id": f"pi-{coins}",
        "user_id": str(user.id),
        "provider": "sandbox",
        "currency": "NPR",
        "amount": coins * 100,
        "coins": coins,
        "transaction_id": None,
    }


@pytest.mark.no_relay
async def test_email_is_in_the_users_language_and_retried_after_a_temporary_smtp_failure(
    app: HaloBuzzApp, app_factory: Callable[..., Any], make_user: Any, flaky_smtp: SmtpServer
) -> None:
    worker = await app_factory(
        jobs=jobs_settings(),
        mail={"smtp_host": "127.0.0.1", "smtp_port": flaky_smtp.port},
        auth={"public_url": "https://halobuzz.example"},
        notifications=notification_settings(),
    )
    english = await make_user(email_verified_at=utcnow(), display_name="Asha")
    nepali = await make_user(email_verified_at=utcnow(), language="ne", display_name="Bikash")
    unverified = await make_user()

    await emit(worker, "payment.completed", _payment(english, 500))
    first = await wait_delivery(worker, english.id, "email", lambda d: d.status == "sent")
    assert first.attempts == 2  # 451 first, then accepted
    mail = await flaky_smtp.next_message()
    assert mail["To"] == english.email
    assert mail["Subject"] == "HaloBuzz: Payment received"
    text = body_of(mail)
    assert text.startswith("Hello Asha,")
    assert "500 coins were added to your wallet (500.00 NPR)" in text
    assert "https://halobuzz.example/wallet" in text

    await emit(worker, "payment.completed", _payment(nepali, 750))
    await wait_delivery(worker, nepali.id, "email", lambda d: d.status == "sent")
    mail = await flaky_smtp.next_message()
    assert mail["Subject"] == "HaloBuzz: भुक्तानी प्राप्त भयो"
    text = body_of(mail)
    assert text.startswith("नमस्ते Bikash,")
    assert "तपाईंको वालेटमा 750 सिक्का थपियो (750.00 NPR)" in text

    await emit(worker, "payment.completed", _payment(unverified, 100))
    await wait_notified(worker, unverified.id, "payment_completed")  # in-app only: the address is unverified
    assert await deliveries_of(worker, unverified.id, "email") == []


@pytest.mark.no_relay
async def test_daily_digest_collects_held_mails_into_one_per_local_day(
    app: HaloBuzzApp, app_factory: Callable[..., Any], make_user: Any, smtp_server: SmtpServer
) -> None:
    worker = await app_factory(
        jobs=jobs_settings(),
        mail={"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port},
        notifications=notification_settings(digest_hour=8),
    )
    user = await make_user(email_verified_at=utcnow(), timezone="Asia/Kathmandu", display_name="Chandra")
    async with client_for(worker) as client:
        r = await client.patch(PREFS, json={"email_digest": True}, headers=user.headers)
        assert r.status_code == 200 and r.json()["email_digest"] is True
    await emit(worker, "payment.completed", _payment(user, 100))
    await emit(worker, "payment.completed", _payment(user, 200))

    async def held() -> list[NotificationDelivery]:
        rows = await deliveries_of(worker, user.id, "email")
        return rows if len(rows) == 2 and all(r.status == "digest" for r in rows) else []

    await wait_for(held)
    assert smtp_server.inbox.empty()

    entry = next(e for e in SCHEDULE if e.job == "halobuzz.notifications.digest:send_digests")
    scheduler = Scheduler(worker.runtime, entries=[entry])
    kathmandu = ZoneInfo("Asia/Kathmandu")
    today = utcnow().astimezone(kathmandu).date()
    early = datetime.combine(today, datetime.min.time(), tzinfo=kathmandu).replace(hour=7, minute=5)
    [run] = await scheduler.tick(now=early.astimezone(ZoneInfo("UTC")))
    assert run.status == "succeeded" and run.result == {"digests": 0, "items": 0}  # before 08:00 there

    morning = early.replace(hour=9)
    [run] = await scheduler.tick(now=morning.astimezone(ZoneInfo("UTC")))
    assert run.result == {"digests": 1, "items": 2}
    mail = await smtp_server.next_message()
    assert mail["Subject"] == "Your HaloBuzz daily digest: 2 notifications"
    text = body_of(mail)
    assert text.startswith("Hello Chandra,")
    assert "100 coins were added" in text and "200 coins were added" in text
    await wait_delivery(worker, user.id, "email", lambda d: d.type == "digest" and d.status == "sent")
    rows = await deliveries_of(worker, user.id, "email")
    assert sorted(r.status for r in rows) == ["digested", "digested", "sent"]

    # Later the same local day: a new item waits for tomorrow's digest.
    await emit(worker, "payment.completed", _payment(user, 300))
    await wait_for(lambda: _has_status(worker, user.id, "digest"))
    [run] = await scheduler.tick(now=morning.replace(hour=10).astimezone(ZoneInfo("UTC")))
    assert run.result == {"digests": 0, "items": 0}
    tomorrow = morning + timedelta(days=1)
    [run] = await scheduler.tick(now=tomorrow.astimezone(ZoneInfo("UTC")))
    assert run.result == {"digests": 1, "items": 1}
    assert "300 coins were added" in body_of(await smtp_server.next_message())


async def _has_status(app: HaloBuzzApp, user_id: Any, status: str) -> bool:
    return any(r.status == status for r in await deliveries_of(app, user_id, "email"))
