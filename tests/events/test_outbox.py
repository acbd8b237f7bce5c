"""The transactional outbox: atomic with the state change, delivered after commit, once per consumer."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from halobuzz.app import HaloBuzzApp
from halobuzz.core import events
from halobuzz.core.events import Event, OutboxEvent, ProcessedEvent, Relay, RelaySettings
from tests.events.conftest import wait_for


async def _outbox_count(app: HaloBuzzApp, type_: str) -> int:
    async with app.runtime.db.session(write=False) as s:
        return int(await s.scalar(select(func.count()).where(OutboxEvent.type == type_)) or 0)


async def test_rolled_back_transaction_publishes_nothing(app_factory: Callable[..., Any], register: Any) -> None:
    app = await app_factory()  # no relay: inspect the outbox itself
    seen: list[Event] = []

    async def handler(_rt: Any, event: Event) -> None:
        seen.append(event)

    register("test.rollback", "test-rollback", handler)
    with pytest.raises(RuntimeError):
        async with app.runtime.db.session() as s:
            events.emit(s, "test.rollback", {"n": 1})
            await s.flush()
            raise RuntimeError("boom")
    assert await _outbox_count(app, "test.rollback") == 0
    assert await Relay(app.runtime).run_once() == 0
    assert seen == []

    async with app.runtime.db.session() as s:
        emitted = events.emit(s, "test.rollback", {"n": 2, "who": uuid.UUID(int=7)})
    assert await Relay(app.runtime).run_once() == 1
    assert [e.id for e in seen] == [emitted.id]
    envelope = seen[0].to_envelope()
    assert set(envelope) == {"id", "type", "version", "occurred_at", "actor_id", "data"}
    assert envelope["data"] == {"n": 2, "who": str(uuid.UUID(int=7))}


async def test_duplicate_delivery_is_skipped(app_factory: Callable[..., Any], register: Any) -> None:
    app = await app_factory()
    calls: list[uuid.UUID] = []

    async def handler(_rt: Any, event: Event) -> None:
        calls.append(event.id)

    register("test.dup", "test-dup", handler)
    async with app.runtime.db.session() as s:
        emitted = events.emit(s, "test.dup", {})
    item = events.consumers_for("test.dup")[0]
    assert await events.deliver(app.runtime, emitted, item) is True
    # The broker delivers the same event again (at least once): the processed mark skips it.
    assert await events.deliver(app.runtime, emitted, item) is False
    assert calls == [emitted.id]
    async with app.runtime.db.session(write=False) as s:
        assert await s.get(ProcessedEvent, ("test-dup", emitted.id)) is not None
    # A relay that re-reads the row (a lease expired) does not run the handler again either.
    relay = Relay(app.runtime)
    assert await relay.run_once() == 1
    assert calls == [emitted.id]


async def test_relay_delivers_follow_after_commit(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, register: Any
) -> None:
    seen: list[Event] = []

    async def handler(_rt: Any, event: Event) -> None:
        seen.append(event)

    register("user.new_follower", "test-follow", handler)
    alice, bob = await make_user(), await make_user()
    r = await client.post(f"/api/v1/users/{bob.id}/follow", headers=alice.headers)
    assert r.status_code == 200, r.text
    await wait_for(lambda: seen)
    assert seen[0].data["user_id"] == str(bob.id)
    assert seen[0].data["follower_id"] == str(alice.id)
    assert seen[0].actor_id == alice.id
    # Following again changes nothing and emits nothing.
    r = await client.post(f"/api/v1/users/{bob.id}/follow", headers=alice.headers)
    assert r.status_code == 200
    assert await _outbox_count(app, "user.new_follower") == 1


async def test_failing_consumer_retries_then_dead_letters_and_admin_retries(
    app_factory: Callable[..., Any], register: Any
) -> None:
    from tests.events.conftest import jobs_settings

    app = await app_factory(jobs=jobs_settings(max_attempts=2))
    from tests.conftest import client_for

    healthy = {"ok": False}
    attempts: list[int] = []
    done: list[uuid.UUID] = []

    async def handler(_rt: Any, event: Event) -> None:
        attempts.append(1)
        if not healthy["ok"]:
            raise RuntimeError("downstream unavailable")
        done.append(event.id)

    register("test.flaky", "test-flaky", handler)
    async with app.runtime.db.session() as s:
        emitted = events.emit(s, "test.flaky", {"x": 1})
    async with app.runtime.db.session() as s:
        from halobuzz.accounts.models import User

        admin = User(
            username="root1",
            username_key="root1",
            email="root1@example.com",
            password_hash="x",
            display_name="root",
            roles=["user", "admin"],
        )
        s.add(admin)
        await s.flush()
        from halobuzz.accounts import auth

        pair = await auth.start_session(
            session=s, jwt=app.runtime.jwt, settings=app.runtime.settings.auth, user=admin, device="t", ip="127.0.0.1"
        )
    headers = {"Authorization": f"Bearer {pair.access_token}"}
    async with client_for(app) as client:

        async def dead() -> list[dict[str, Any]]:
            r = await client.get("/api/v1/admin/jobs/dead-letter", headers=headers)
            assert r.status_code == 200, r.text
            return list(r.json()["items"])

        items = await wait_for(dead)
        assert len(attempts) == 2
        assert items[0]["kind"] == "consumer"
        assert items[0]["name"] == "test-flaky"
        assert items[0]["event_id"] == str(emitted.id)
        assert "downstream unavailable" in items[0]["error"]

        healthy["ok"] = True
        r = await client.post(f"/api/v1/admin/jobs/dead-letter/{items[0]['id']}/retry", headers=headers)
        assert r.status_code == 202, r.text
        await wait_for(lambda: done)
        assert done == [emitted.id]
        r = await client.post(f"/api/v1/admin/jobs/dead-letter/{items[0]['id']}/retry", headers=headers)
        assert r.status_code == 409
        r = await client.post(f"/api/v1/admin/jobs/dead-letter/{uuid.uuid4()}/retry", headers=headers)
        assert r.status_code == 404
        # Not for users without the admin role.
        alice = await _plain_user(app)
        r = await client.get("/api/v1/admin/jobs/dead-letter", headers=alice)
        assert r.status_code == 403


async def _plain_user(app: HaloBuzzApp) -> dict[str, str]:
    from halobuzz.accounts import auth
    from halobuzz.accounts.models import User

    async with app.runtime.db.session() as s:
        name = f"u{uuid.uuid4().hex[:10]}"
        user = User(
            username=name,
            username_key=name,
            email=f"{name}@example.com",
            password_hash="x",
            display_name=name,
            roles=["user"],
        )
        s.add(user)
        await s.flush()
        pair = await auth.start_session(
            session=s, jwt=app.runtime.jwt, settings=app.runtime.settings.auth, user=user, device="t", ip="127.0.0.1"
        )
    return {"Authorization": f"Bearer {pair.access_token}"}


def test_backoff_doubles_and_caps() -> None:
    assert [events.backoff(n, base=1.0, cap=5.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert RelaySettings().max_attempts >= 1


async def test_postgres_relay_wakes_on_notify(app_factory: Callable[..., Any], register: Any) -> None:
    from halobuzz.core.clock import utcnow
    from halobuzz.core.ids import uuid7
    from tests.events.conftest import jobs_settings

    app = await app_factory(jobs=jobs_settings(relay_poll_seconds=3600))  # polling would never come in time
    if app.runtime.db.is_sqlite:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    seen: list[Event] = []

    async def handler(_rt: Any, event: Event) -> None:
        seen.append(event)

    register("test.notify", "test-notify", handler)
    relay = app.runtime.extras["relay"]
    assert isinstance(relay, Relay)
    await wait_for(lambda: relay.listening)
    # Written by "another process": a plain insert, no in-process wake-up — only the trigger's NOTIFY.
    now = utcnow()
    async with app.runtime.db.write_engine.begin() as conn:
        await conn.execute(
            OutboxEvent.__table__.insert().values(
                id=uuid7(),
                type="test.notify",
                version=1,
                occurred_at=now,
                actor_id=None,
                data={},
                attempts=0,
                next_attempt_at=now,
            )
        )
    await wait_for(lambda: seen)
