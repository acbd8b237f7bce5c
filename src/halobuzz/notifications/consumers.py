"""Event consumers: which domain events notify whom (docs/notifications.md).

| event | recipients | type |
|---|---|---|
| ``stream.live`` | every follower of the creator (chunked fan-out, fanout.py) | ``stream_live`` |
| ``user.new_follower`` | the followed user | ``new_follower`` |
| ``gift.sent`` | the receiver | ``gift_received`` |
| ``payment.completed`` | the buyer | ``payment_completed`` |
| ``moderation.action`` | its subject (decisions and appeal outcomes, with the reason) | ``moderation`` |
| ``raid.incoming`` | the target stream's owner | ``raid_incoming`` |
| ``subscription.new`` | the subscriber | ``subscription_started`` |

Each handler opens its own transaction; rows are unique per recipient and source event, so a
redelivered event writes nothing twice. Socket pushes and delivery wake-ups run after commit.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from halobuzz.accounts.models import User
from halobuzz.core import events
from halobuzz.core.db import after_commit
from halobuzz.notifications import catalog, fanout, service
from halobuzz.notifications.dispatch import wake_all
from halobuzz.notifications.push import push_created

if TYPE_CHECKING:
    from halobuzz.core.runtime import Runtime

log = structlog.get_logger(__name__)


# Socket pushes still being published (they overlap the next chunk of a fan-out).
_pushing: set[asyncio.Task[int]] = set()


async def after_created(runtime: Runtime, outcome: service.Outcome, draft: service.Draft) -> None:
    """After commit: a wake-up for queued deliveries, and the socket pushes of the new rows.

    Large batches (fan-out chunks) are published in the background so the next chunk's writes
    overlap them; single notifications are published before the handler returns.
    """
    if outcome.deliveries:
        wake_all()
    push = push_created(runtime, outcome.created, type=draft.type, data=draft.data, created_at=outcome.created_at)
    if len(outcome.created) < 100:
        await push
        return
    task = asyncio.get_running_loop().create_task(push)
    _pushing.add(task)
    task.add_done_callback(_pushing.discard)


async def _notify_one(runtime: Runtime, recipient: Any, draft: service.Draft) -> service.Outcome | None:
    if not recipient:
        return None
    recipient_id = uuid.UUID(str(recipient))
    if draft.actor_id is not None and draft.actor_id == recipient_id:
        return None  # nobody is told about their own doing
    settings = runtime.settings.notifications
    async with runtime.db.session() as s:
        if await s.scalar(select(User.id).where(User.id == recipient_id)) is None:
            return None
        outcome = await service.notify(
            session=s,
            draft=draft,
            recipients=[recipient_id],
            available=fanout.runtime_channels(runtime),
            require_verified_email=settings.email_require_verified,
        )
        after_commit(s, lambda: after_created(runtime, outcome, draft))
    return outcome


async def _username(runtime: Runtime, user_id: Any) -> str:
    if not user_id:
        return ""
    async with runtime.db.session(write=False) as s:
        name = await s.scalar(select(User.username).where(User.id == uuid.UUID(str(user_id))))
    return name or ""


def _supported(event: events.Event) -> bool:
    if event.version != 1:
        log.warning("notification_event_version_unknown", event_type=event.type, version=event.version)
        return False
    return True


def _uuid(value: Any) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


@events.consumer("stream.live", name="notifications:stream.live")
async def on_stream_live(runtime: Runtime, event: events.Event) -> None:
    """Start the go-live fan-out: the first chunk of followers (fanout.py)."""
    if not _supported(event):
        return
    d = event.data
    owner_id = d["owner_id"]
    data = {
        "stream_id": d["stream_id"],
        "broadcast_id": d.get("broadcast_id"),
        "title": d.get("title", ""),
        "owner": {"id": str(owner_id), "username": await _username(runtime, owner_id)},
    }
    await fanout.process_chunk(runtime, data=data, source_id=event.id, chunk=0)


@events.consumer(fanout.FANOUT_EVENT, name="notifications:fanout")
async def on_fanout_chunk(runtime: Runtime, event: events.Event) -> None:
    """A later chunk of a go-live fan-out."""
    d = event.data
    await fanout.process_chunk(runtime, data=d, source_id=uuid.UUID(str(d["source_event_id"])), chunk=int(d["chunk"]))


@events.consumer("user.new_follower", name="notifications:user.new_follower")
async def on_new_follower(runtime: Runtime, event: events.Event) -> None:
    if not _supported(event):
        return
    d = event.data
    follower = {"id": str(d["follower_id"]), "username": d.get("follower_username", "")}
    await _notify_one(
        runtime,
        d.get("user_id"),
        service.Draft(
            type=catalog.NEW_FOLLOWER,
            data={"follower": follower},
            dedupe_key=f"user.new_follower:{event.id}",
            actor_id=_uuid(d.get("follower_id")),
            subject_type="user",
            subject_id=str(d["follower_id"]),
        ),
    )


@events.consumer("gift.sent", name="notifications:gift.sent")
async def on_gift_sent(runtime: Runtime, event: events.Event) -> None:
    if not _supported(event):
        return
    d = event.data
    gift = d.get("gift") or {}
    sender_id = d.get("sender_id")
    await _notify_one(
        runtime,
        d.get("receiver_id"),
        service.Draft(
            type=catalog.GIFT_RECEIVED,
            data={
                "gift": {
                    "id": gift.get("id"),
                    "name": gift.get("name", ""),
                    "animation_url": gift.get("animation_url"),
                },
                "quantity": d.get("quantity", 1),
                "coins": d.get("coins_spent", 0),
                "stream_id": d.get("stream_id"),
                "sender": {
                    "id": str(sender_id) if sender_id else None,
                    "username": await _username(runtime, sender_id),
                },
                "transaction_id": d.get("transaction_id"),
            },
            dedupe_key=f"gift.sent:{event.id}",
            actor_id=_uuid(sender_id),
            subject_type="stream",
            subject_id=str(d.get("stream_id") or ""),
        ),
    )


@events.consumer("payment.completed", name="notifications:payment.completed")
async def on_payment_completed(runtime: Runtime, event: events.Event) -> None:
    if not _supported(event):
        return
    d = event.data
    await _notify_one(
        runtime,
        d.get("user_id"),
        service.Draft(
            type=catalog.PAYMENT_COMPLETED,
            data={
                "payment_intent_id": d.get("payment_intent_id"),
                "provider": d.get("provider"),
                "currency": d.get("currency"),
                "amount": d.get("amount"),
                "coins": d.get("coins"),
            },
            dedupe_key=f"payment.completed:{event.id}",
            subject_type="payment_intent",
            subject_id=str(d.get("payment_intent_id") or ""),
        ),
    )


@events.consumer("moderation.action", name="notifications:moderation.action")
async def on_moderation_action(runtime: Runtime, event: events.Event) -> None:
    """Decisions about a user's account or content, and appeal outcomes, with the reason given."""
    if not _supported(event):
        return
    d = event.data
    kind = d.get("kind", "action")
    keep = (
        "action_id",
        "action",
        "reason",
        "duration_days",
        "duration_minutes",
        "until",
        "stream_id",
        "appeal_id",
        "outcome",
        "submission_id",
    )
    await _notify_one(
        runtime,
        d.get("user_id"),
        service.Draft(
            type=catalog.MODERATION,
            data={"kind": kind, **{k: d[k] for k in keep if k in d}},
            dedupe_key=f"moderation.action:{event.id}",
            subject_type={"appeal": "moderation_appeal", "kyc": "kyc_submission"}.get(kind, "moderation_action"),
            subject_id=str(d.get("appeal_id") or d.get("submission_id") or d.get("action_id") or ""),
        ),
    )


@events.consumer("raid.incoming", name="notifications:raid.incoming")
async def on_raid_incoming(runtime: Runtime, event: events.Event) -> None:
    if not _supported(event):
        return
    d = event.data
    raider_id = d.get("source_owner_id")
    await _notify_one(
        runtime,
        d.get("target_owner_id"),
        service.Draft(
            type=catalog.RAID_INCOMING,
            data={
                "stream_id": d.get("target_stream_id"),
                "from_stream_id": d.get("stream_id"),
                "raider": {
                    "id": str(raider_id) if raider_id else None,
                    "username": await _username(runtime, raider_id),
                },
                "viewer_count": d.get("viewer_count", 0),
            },
            dedupe_key=f"raid.incoming:{event.id}",
            actor_id=_uuid(raider_id),
            subject_type="stream",
            subject_id=str(d.get("target_stream_id") or ""),
        ),
    )


@events.consumer("subscription.new", name="notifications:subscription.new")
async def on_subscription_new(runtime: Runtime, event: events.Event) -> None:
    if not _supported(event):
        return
    d = event.data
    await _notify_one(
        runtime,
        d.get("user_id"),
        service.Draft(
            type=catalog.SUBSCRIPTION_STARTED,
            data={
                "tier": d.get("tier"),
                "subscription_id": d.get("subscription_id"),
                "expires_at": d.get("expires_at"),
            },
            dedupe_key=f"subscription.new:{event.id}",
            subject_type="subscription",
            subject_id=str(d.get("subscription_id") or ""),
        ),
    )
