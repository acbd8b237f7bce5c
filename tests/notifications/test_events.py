"""Which events notify whom: real API actions (follows, moderation decisions and appeals, going live,
raids) and committed events of the other types; one notification per recipient per source event,
however often the event is delivered."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import delete, func, select, update

from halobuzz.app import HaloBuzzApp
from halobuzz.core.clock import utcnow
from halobuzz.core.events import OutboxEvent, ProcessedEvent
from halobuzz.notifications.models import Notification
from tests.events.conftest import wait_for
from tests.notifications.conftest import API, emit, notifications_of, wait_notified


async def _items(client: httpx.AsyncClient, user: Any) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/notifications", headers=user.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_moderation_decision_and_appeal_outcome_reach_the_subject_with_the_reason(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any
) -> None:
    target, reporter = await make_user(), await make_user()
    mod_a, mod_b = await make_user(roles=["moderator"]), await make_user(roles=["moderator"])
    body = {"target_type": "user", "target_id": str(target.id), "reason": "spam"}
    case_id = (await client.post(f"{API}/reports", json=body, headers=reporter.headers)).json()["case_id"]
    await client.post(f"{API}/moderation/cases/{case_id}/claim", headers=mod_a.headers)
    decision = {"action": "warn", "reason": "posting links"}
    action = await client.post(f"{API}/moderation/cases/{case_id}/decision", json=decision, headers=mod_a.headers)
    action_id = action.json()["id"]

    await wait_notified(app, target.id, "moderation")
    [item] = await _items(client, target)
    assert item["type"] == "moderation"
    assert item["data"] == {
        "kind": "action",
        "action_id": action_id,
        "action": "warn",
        "reason": "posting links",
        "duration_days": None,
    }
    assert "moderator_id" not in item["data"]  # who decided is not revealed

    appeal = await client.post(
        f"{API}/moderation/actions/{action_id}/appeal", json={"text": "my own links"}, headers=target.headers
    )
    verdict = {"reverse": True, "reason": "links were to the user's own channel"}
    r = await client.post(
        f"{API}/moderation/appeals/{appeal.json()['id']}/decision", json=verdict, headers=mod_b.headers
    )
    assert r.status_code == 200, r.text
    await wait_notified(app, target.id, "moderation", 2)
    newest = (await _items(client, target))[0]
    assert newest["data"]["kind"] == "appeal"
    assert newest["data"]["outcome"] == "reversed"
    assert newest["data"]["reason"] == "links were to the user's own channel"
    # The reporter and the moderators hear nothing.
    for other in (reporter, mod_a, mod_b):
        assert await _items(client, other) == []


async def test_gift_payment_raid_and_subscription_events_notify_their_recipients(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any
) -> None:
    sender, creator, buyer = await make_user(), await make_user(roles=["creator"]), await make_user()
    raider, subscriber = await make_user(roles=["creator"]), await make_user()
    stream_id, target_stream = str(uuid.uuid4()), str(uuid.uuid4())
    await emit(
        app,
        "gift.sent",
        {
            "transaction_id": str(uuid.uuid4()),
            "gift": {
                "id": str(uuid.uuid4()),
                "name": "Rose",
                "coin_price": 10,
                "animation_url": None,
                "rarity": "common",
            },
            "quantity": 3,
            "coins_spent": 30,
            "stream_id": stream_id,
            "broadcast_id": None,
            "sender_id": str(sender.id),
            "receiver_id": str(creator.id),
            "creator_coins": 21,
            "platform_coins": 9,
        },
        actor_id=sender.id,
    )
    intent_id = str(uuid.uuid4())
    await emit(
        app,
        "payment.completed",
        {
            "payment_intent_id": intent_id,
            "user_id": str(buyer.id),
            "provider": "sandbox",
            "currency": "NPR",
            "amount": 50000,
            "coins": 500,
            "transaction_id": str(uuid.uuid4()),
        },
        actor_id=buyer.id,
    )
    await emit(
        app,
        "raid.incoming",
        {
            "stream_id": stream_id,
            "source_owner_id": str(raider.id),
            "target_stream_id": target_stream,
            "target_owner_id": str(creator.id),
            "viewer_count": 42,
        },
        actor_id=raider.id,
    )
    await emit(
        app,
        "subscription.new",
        {
            "user_id": str(subscriber.id),
            "tier": "gold",
            "subscription_id": "sub-1",
            "expires_at": "2027-01-01T00:00:00Z",
        },
    )

    await wait_notified(app, creator.id, "gift_received")
    await wait_notified(app, creator.id, "raid_incoming")
    await wait_notified(app, buyer.id, "payment_completed")
    await wait_notified(app, subscriber.id, "subscription_started")
    by_type = {i["type"]: i["data"] for i in await _items(client, creator)}
    assert by_type["gift_received"]["sender"] == {"id": str(sender.id), "username": sender.username}
    assert by_type["gift_received"]["gift"]["name"] == "Rose"
    assert (by_type["gift_received"]["quantity"], by_type["gift_received"]["coins"]) == (3, 30)
    assert by_type["raid_incoming"] == {
        "stream_id": target_stream,
        "from_stream_id": stream_id,
        "raider": {"id": str(raider.id), "username": raider.username},
        "viewer_count": 42,
    }
    [payment] = await _items(client, buyer)
    assert payment["data"] == {
        "payment_intent_id": intent_id,
        "provider": "sandbox",
        "currency": "NPR",
        "amount": 50000,
        "coins": 500,
    }
    [sub] = await _items(client, subscriber)
    assert sub["data"] == {"tier": "gold", "subscription_id": "sub-1", "expires_at": "2027-01-01T00:00:00Z"}
    assert await _items(client, sender) == [] and await _items(client, raider) == []


async def test_a_redelivered_event_writes_no_second_notification(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any
) -> None:
    followed, follower = await make_user(), await make_user()
    r = await client.post(f"{API}/users/{followed.id}/follow", headers=follower.headers)
    assert r.status_code == 200
    [first] = await wait_notified(app, followed.id, "new_follower")

    async def dispatched() -> uuid.UUID | None:
        # The first delivery has finished (every consumer ran, the row is marked dispatched):
        # resetting it before then would be overwritten by that delivery's own completion.
        async with app.runtime.db.session(write=False) as s:
            row = (
                await s.execute(
                    select(OutboxEvent.id, OutboxEvent.dispatched_at).where(OutboxEvent.type == "user.new_follower")
                )
            ).first()
        return row.id if row is not None and row.dispatched_at is not None else None

    event_id = await wait_for(dispatched)

    # As if the process had died between the handler's commit and its processed mark: deliver again.
    async with app.runtime.db.session() as s:
        await s.execute(delete(ProcessedEvent).where(ProcessedEvent.event_id == event_id))
        await s.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id)
            .values(dispatched_at=None, next_attempt_at=utcnow(), attempts=0)
        )

    async def redelivered() -> bool:
        async with app.runtime.db.session(write=False) as s:
            marks = await s.scalar(
                select(func.count())
                .select_from(ProcessedEvent)
                .where(
                    ProcessedEvent.event_id == event_id, ProcessedEvent.consumer == "notifications:user.new_follower"
                )
            )
        return bool(marks)

    await wait_for(redelivered)
    rows = await notifications_of(app, followed.id)
    assert [r.id for r in rows] == [first.id]

    # Unfollow and follow again: a new event, so a new notification.
    await client.delete(f"{API}/users/{followed.id}/follow", headers=follower.headers)
    await client.post(f"{API}/users/{followed.id}/follow", headers=follower.headers)
    await wait_notified(app, followed.id, "new_follower", 2)
    async with app.runtime.db.session(write=False) as s:
        keys = list(await s.scalars(select(Notification.dedupe_key).where(Notification.recipient_id == followed.id)))
    assert len(set(keys)) == 2
