"""The scheduler: local-time slots, one firing per slot across schedulers, retries, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from halobuzz.app import HaloBuzzApp
from halobuzz.core.events import DeadLetterJob
from halobuzz.core.runtime import Runtime
from halobuzz.jobs.schedule import Entry, JobRun, Scheduler
from tests.events.conftest import wait_for
from tests.jobs import sample

SYDNEY = ZoneInfo("Australia/Sydney")


def test_daily_slot_is_local_time_across_dst() -> None:
    entry = Entry("x:y", at="03:00")
    # 2026-10-04 is the first day of Sydney summer time (+11); the day before is +10.
    after = datetime(2026, 10, 4, 0, 0, tzinfo=UTC)  # 11:00 local
    assert entry.latest_slot(after, SYDNEY) == datetime(2026, 10, 3, 16, 0, tzinfo=UTC)
    before = datetime(2026, 10, 3, 0, 0, tzinfo=UTC)  # 10:00 local, +10
    assert entry.latest_slot(before, SYDNEY) == datetime(2026, 10, 2, 17, 0, tzinfo=UTC)
    every = Entry("x:y", every_minutes=5)
    assert every.latest_slot(datetime(2026, 1, 1, 12, 7, 30, tzinfo=UTC), SYDNEY) == datetime(
        2026, 1, 1, 12, 5, tzinfo=UTC
    )


async def test_two_schedulers_fire_each_slot_once(app: HaloBuzzApp) -> None:
    sample.calls.clear()
    second = Runtime.build(app.runtime.settings)  # another scheduler process over the same database
    try:
        entries = [Entry("tests.jobs.sample:count", at="03:00"), Entry("tests.jobs.sample:count", every_minutes=5)]
        one, two = Scheduler(app.runtime, entries), Scheduler(second, entries)
        now = datetime(2026, 3, 1, 16, 12, tzinfo=UTC)  # 03:12 in Sydney (+11)
        fired = await asyncio.gather(one.tick(now), two.tick(now), one.tick(now), two.tick(now))
        assert sum(len(f) for f in fired) == 2
        assert sorted(sample.calls) == [
            datetime(2026, 3, 1, 16, 0, tzinfo=UTC),
            datetime(2026, 3, 1, 16, 10, tzinfo=UTC),
        ]
        # The next 5-minute slot fires once more; the daily one does not.
        await asyncio.gather(one.tick(now + timedelta(minutes=5)), two.tick(now + timedelta(minutes=5)))
        assert len(sample.calls) == 3
        async with app.runtime.db.session(write=False) as s:
            runs = list((await s.execute(select(JobRun).order_by(JobRun.scheduled_for))).scalars())
        assert [r.status for r in runs] == ["succeeded"] * 3
        assert runs[-1].result == {"calls": 3}
    finally:
        await second.close()


async def test_missing_job_is_skipped_and_failing_job_dead_letters(app: HaloBuzzApp) -> None:
    sample.calls.clear()
    sample.failures["left"] = 5
    now = datetime(2026, 3, 1, 16, 12, tzinfo=UTC)
    sch = Scheduler(
        app.runtime,
        [Entry("tests.jobs.nowhere:job", every_minutes=5), Entry("tests.jobs.sample:flaky", every_minutes=5)],
        max_attempts=2,
        backoff_base_seconds=0.01,
    )
    runs = {r.job: r for r in await sch.tick(now)}
    assert runs["tests.jobs.nowhere:job"].status == "skipped"
    assert runs["tests.jobs.sample:flaky"].status == "failed"
    assert runs["tests.jobs.sample:flaky"].attempts == 2
    async with app.runtime.db.session(write=False) as s:
        dead = list((await s.execute(select(DeadLetterJob))).scalars())
    assert [(d.kind, d.name) for d in dead] == [("job", "tests.jobs.sample:flaky")]
    sample.failures["left"] = 0


async def test_dead_job_retried_through_the_api(app_factory: Callable[..., Any], make_settings: Any) -> None:
    app: HaloBuzzApp = await app_factory()
    from tests.events.test_outbox import _plain_user

    sample.calls.clear()
    sample.failures["left"] = 1
    slot_now = datetime(2026, 3, 1, 16, 12, tzinfo=UTC)
    await Scheduler(app.runtime, [Entry("tests.jobs.sample:flaky", every_minutes=5)], max_attempts=1).tick(slot_now)
    admin = await _admin(app)
    from tests.conftest import client_for

    async with client_for(app) as client:
        r = await client.get("/api/v1/admin/jobs/dead-letter?limit=1", headers=admin)
        assert r.status_code == 200, r.text
        (item,) = r.json()["items"]
        r = await client.post(f"/api/v1/admin/jobs/dead-letter/{item['id']}/retry", headers=admin)
        assert r.status_code == 202, r.text

        async def succeeded() -> bool:
            async with app.runtime.db.session(write=False) as s:
                run = await s.scalar(select(JobRun).where(JobRun.job == "tests.jobs.sample:flaky"))
                return run is not None and run.status == "succeeded"

        await wait_for(succeeded)
        assert sample.calls == [datetime(2026, 3, 1, 16, 10, tzinfo=UTC)]
        r = await client.get("/api/v1/admin/jobs", headers=admin)
        assert r.status_code == 200
        jobs = {j["job"]: j for j in r.json()}
        assert jobs["halobuzz.jobs.cleanup:cleanup"]["schedule"] == "daily at 03:00"
        assert jobs["halobuzz.jobs.cleanup:cleanup"]["timezone"] == "Australia/Sydney"
        assert jobs["halobuzz.payments.reconcile:reconcile_pending"]["schedule"] == "every 5 minutes"
        r = await client.get("/api/v1/admin/jobs", headers=await _plain_user(app))
        assert r.status_code == 403


async def _admin(app: HaloBuzzApp) -> dict[str, str]:
    from halobuzz.accounts import auth
    from halobuzz.accounts.models import User

    async with app.runtime.db.session() as s:
        user = User(
            username="jobadmin",
            username_key="jobadmin",
            email="jobadmin@example.com",
            password_hash="x",
            display_name="a",
            roles=["user", "admin"],
        )
        s.add(user)
        await s.flush()
        pair = await auth.start_session(
            session=s, jwt=app.runtime.jwt, settings=app.runtime.settings.auth, user=user, device="t", ip="127.0.0.1"
        )
    return {"Authorization": f"Bearer {pair.access_token}"}
