"""A small, populated HaloBuzz for page tests: users in every role, a live stream with chat and
gifts, a recording, a report case and an appeal, payments, a payout, a flag, a webhook and a
dead letter — made through the API where one exists, as rows where only a background process
would write them (chat lines, recordings, dead letters, fraud flags)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from halobuzz.app import HaloBuzzApp
from halobuzz.chat.models import ChatMessage
from halobuzz.core.clock import utcnow
from halobuzz.core.events import DeadLetterJob
from halobuzz.core.ids import uuid7
from halobuzz.economy import fraud
from halobuzz.media.models import Recording
from halobuzz.notifications.models import Notification
from tests.conftest import client_for
from tests.economy.conftest import grant_coins
from tests.kyc.support import approve_kyc

API = "/api/v1"


@dataclass
class World:
    admin: Any
    moderator: Any
    creator: Any
    viewer: Any
    troll: Any
    stream_id: str
    broadcast_id: str
    message_ids: list[str]
    recording_id: str
    case_id: str
    appeal_id: str
    intent_id: str
    payout_id: str
    webhook_id: str
    dead_id: str
    kyc_id: str = ""
    radio_id: str = ""


async def _ok(response: httpx.Response, *codes: int) -> Any:
    assert response.status_code in (codes or (200, 201)), (response.request.url, response.status_code, response.text)
    return response.json() if response.content else None


async def build_world(app: HaloBuzzApp, make_user: Any, make_admin: Any) -> World:
    admin = await make_admin("worldadmin")
    moderator = await make_user("worldmod", roles=["moderator"])
    creator = await make_user("worldcreator", roles=["creator"])
    viewer = await make_user("worldviewer")
    troll = await make_user("worldtroll")
    async with client_for(app) as c:
        await _ok(await c.post(f"{API}/categories", json={"slug": "music", "name": "Music"}, headers=admin.headers))
        # An OG tier on sale and a festival running now (the /og page, the home page's banner).
        tier = {
            "level": 1,
            "name": "World OG",
            "monthly_price": 300,
            "daily_bonus": 5,
            "chat_privileges": ["og_emotes"],
        }
        await _ok(await c.post(f"{API}/admin/og/tiers", json=tier, headers=admin.headers))
        window = {
            "starts_at": (utcnow() - timedelta(hours=1)).isoformat(),
            "ends_at": (utcnow() + timedelta(days=1)).isoformat(),
        }
        festival = {"name": "World festival", "regions": ["NP"], "bonus_multiplier": 1.5, **window}
        await _ok(await c.post(f"{API}/admin/festivals", json=festival, headers=admin.headers))
        stream = await _ok(
            await c.post(
                f"{API}/streams",
                json={"title": "Evening ghazal", "category": "music", "language": "ne", "tags": ["live"]},
                headers=creator.headers,
            )
        )
        sid = stream["id"]
        live = await _ok(await c.post(f"{API}/streams/{sid}/start", headers=creator.headers))
        broadcast_id = live["current_broadcast"]["id"]

        # Chat lines as the gateway's writer stores them.
        message_ids: list[str] = []
        async with app.runtime.db.session() as session:
            for seq, (who, text) in enumerate(
                ((viewer, "namaste"), (troll, "buy followers at spam.example"), (viewer, "lovely")), 1
            ):
                mid = uuid7()
                session.add(
                    ChatMessage(
                        id=mid,
                        stream_id=uuid.UUID(sid),
                        broadcast_id=uuid.UUID(broadcast_id),
                        user_id=who.id,
                        text=text,
                        epoch="world",
                        seq=seq,
                        created_at=utcnow() - timedelta(seconds=10 - seq),
                    )
                )
                message_ids.append(str(mid))

        # Coins and gifts.
        await grant_coins(app, viewer.id, 5000)
        gifts = (await _ok(await c.get(f"{API}/gifts")))["items"]
        for key in ("w1", "w2"):
            await _ok(
                await c.post(
                    f"{API}/streams/{sid}/gifts",
                    json={"gift_id": gifts[-1]["id"], "quantity": 1},
                    headers={**viewer.headers, "Idempotency-Key": key},
                )
            )
        package = (await _ok(await c.get(f"{API}/coin-packages")))["items"][0]
        intent = await _ok(
            await c.post(
                f"{API}/payments/intents",
                json={"package_id": package["id"], "provider": "sandbox", "currency": "NPR"},
                headers=viewer.headers,
            )
        )
        await _ok(await c.post(f"{API}/payments/sandbox/{intent['id']}/complete"))

        # A report case on the troll's message, and an appealed warning on another case.
        report = await _ok(
            await c.post(
                f"{API}/reports",
                json={"target_type": "message", "target_id": message_ids[1], "reason": "spam", "details": "a link"},
                headers=viewer.headers,
            )
        )
        other = await _ok(
            await c.post(
                f"{API}/reports",
                json={"target_type": "user", "target_id": str(troll.id), "reason": "harassment"},
                headers=creator.headers,
            )
        )
        await _ok(await c.post(f"{API}/moderation/cases/{other['case_id']}/claim", headers=admin.headers))
        action = await _ok(
            await c.post(
                f"{API}/moderation/cases/{other['case_id']}/decision",
                json={"action": "warn", "reason": "be kind"},
                headers=admin.headers,
            )
        )
        appeal = await _ok(
            await c.post(
                f"{API}/moderation/actions/{action['id']}/appeal", json={"text": "it was a joke"}, headers=troll.headers
            )
        )

        # A payout of the creator's gift earnings (identity verified first).
        kyc_id = await approve_kyc(c, admin, creator)
        # A radio channel with a weekly show hosted on the creator's audio-only stream.
        radio = await _ok(
            await c.post(f"{API}/radio/channels", json={"name": "Awaz Pulse", "timezone": "Asia/Karachi"},
                         headers=creator.headers)
        )  # fmt: skip
        on_air = await _ok(
            await c.post(f"{API}/streams", json={"title": "Morning show", "audio_only": True}, headers=creator.headers)
        )
        await _ok(
            await c.post(f"{API}/radio/channels/{radio['id']}/shows", headers=creator.headers,
                         json={"title": "Chai hour", "host_id": str(creator.id), "stream_id": on_air["id"],
                               "weekday": 0, "start_time": "08:00", "duration_minutes": 60})
        )  # fmt: skip
        earnings = await _ok(await c.get(f"{API}/wallet/earnings", headers=creator.headers))
        payout = await _ok(
            await c.post(
                f"{API}/payouts",
                json={
                    "coins": earnings["available"],
                    "currency": "NPR",
                    "method": "esewa",
                    "destination": "9800000000",
                },
                headers={**creator.headers, "Idempotency-Key": "world-payout"},
            )
        )
        webhook = await _ok(
            await c.post(
                f"{API}/admin/webhooks",
                json={"url": "http://127.0.0.1:9/hook", "secret": "s" * 20, "event_types": ["stream.live"]},
                headers=admin.headers,
            )
        )
        # Keep the admin's 2FA-less API token usable: the world's later calls use the API directly.
    async with app.runtime.db.session() as session:
        recording = Recording(
            stream_id=uuid.UUID(sid),
            broadcast_id=uuid.UUID(broadcast_id),
            owner_id=creator.id,
            title="Evening ghazal",
            storage_prefix=f"vod/{sid}/recording",
            duration_seconds=754,
        )
        session.add(recording)
        dead = DeadLetterJob(
            kind="job",
            name="halobuzz.jobs.analytics:daily_report",
            payload={"scheduled_for": (utcnow() - timedelta(days=1)).isoformat()},
            attempts=8,
            error="RuntimeError: database went away",
        )
        session.add(dead)
        fraud.flag(session, kind="purchase_velocity", user_id=viewer.id, details={"intents": 21})
        # Notifications as the consumers write them: one of each type for the viewer, and the
        # troll's warning.
        for n, (kind, data) in enumerate(
            (
                ("stream_live", {"stream_id": sid, "broadcast_id": broadcast_id, "title": "Evening ghazal",
                                 "creator": {"id": str(creator.id), "username": creator.username}}),
                ("new_follower", {"follower": {"id": str(troll.id), "username": troll.username}}),
                ("gift_received", {"gift": {"id": "g", "name": "Rose"}, "quantity": 2, "coins": 20, "stream_id": sid,
                                   "sender": {"id": str(creator.id), "username": creator.username}}),
                ("payment_completed", {"payment_intent_id": intent["id"], "provider": "sandbox", "coins": 100}),
                ("raid_incoming", {"stream_id": sid, "from_stream_id": sid, "viewer_count": 12,
                                   "raider": {"id": str(creator.id), "username": creator.username}}),
                ("subscription_started", {"tier": "gold", "subscription_id": "s", "expires_at": None}),
                ("moderation", {"kind": "kyc", "action": "kyc_approved", "reason": ""}),
            )
        ):  # fmt: skip
            session.add(Notification(recipient_id=viewer.id, type=kind, data=data, dedupe_key=f"world:{n}"))
        session.add(
            Notification(
                recipient_id=troll.id,
                type="moderation",
                data={"kind": "action", "action_id": action["id"], "action": "warn", "reason": "be kind"},
                dedupe_key="world:warn",
            )
        )
        await session.flush()
        recording_id, dead_id = str(recording.id), str(dead.id)
    return World(
        admin=admin,
        moderator=moderator,
        creator=creator,
        viewer=viewer,
        troll=troll,
        stream_id=sid,
        broadcast_id=broadcast_id,
        message_ids=message_ids,
        recording_id=recording_id,
        case_id=report["case_id"],
        appeal_id=appeal["id"],
        intent_id=intent["id"],
        payout_id=payout["id"],
        webhook_id=webhook["id"],
        dead_id=dead_id,
        kyc_id=kyc_id,
        radio_id=str(radio["id"]),
    )


def pages(w: World) -> list[tuple[str, str]]:
    """(who, path) of every page, for the tours."""
    sid = w.stream_id
    return [
        ("anonymous", "/"),
        ("anonymous", "/?q=ghazal&category=music&language=ne&sort=recent"),
        ("anonymous", f"/streams/{sid}"),
        ("anonymous", f"/streams/{sid}/recordings/{w.recording_id}"),
        ("anonymous", f"/users/{w.creator.username}"),
        ("anonymous", "/radio"),
        ("anonymous", f"/radio/{w.radio_id}"),
        ("anonymous", "/login"),
        ("anonymous", "/signup"),
        ("anonymous", "/forgot-password"),
        ("anonymous", "/reset-password?token=x"),
        ("anonymous", "/verify-email?token=x"),
        ("viewer", "/"),
        ("viewer", f"/streams/{sid}"),
        ("viewer", f"/users/{w.creator.username}"),
        ("viewer", f"/report?target_type=user&target_id={w.troll.id}&label=worldtroll&next=/"),
        ("viewer", "/wallet"),
        ("viewer", "/account"),
        ("viewer", "/account/2fa"),
        ("viewer", "/studio"),
        ("viewer", "/notifications"),
        ("viewer", "/notifications?unread=1"),
        ("viewer", "/notifications/preferences"),
        ("viewer", "/account/appeals"),
        ("viewer", "/studio/kyc"),
        ("troll", "/account/appeals"),
        ("troll", "/notifications"),
        ("creator", "/studio"),
        ("creator", f"/studio/streams/{sid}"),
        ("creator", "/studio/earnings"),
        ("creator", "/studio/radio"),
        ("creator", f"/studio/radio/{w.radio_id}"),
        ("viewer", f"/radio/{w.radio_id}"),
        ("viewer", "/studio/radio"),
        ("creator", "/studio/kyc"),
        ("creator", "/studio/blocked-terms"),
        ("creator", f"/users/{w.creator.username}"),
        ("moderator", "/admin/images"),
        ("moderator", "/admin/users"),
        ("moderator", "/admin/moderation"),
        ("moderator", f"/admin/moderation/cases/{w.case_id}"),
        ("admin", "/admin"),
        ("admin", "/admin/users?q=world"),
        ("admin", f"/admin/users/{w.troll.id}"),
        ("admin", "/admin/moderation"),
        ("admin", f"/admin/moderation/cases/{w.case_id}"),
        ("admin", "/admin/payments"),
        ("admin", "/admin/reconciliation"),
        ("admin", "/admin/payouts"),
        ("admin", "/admin/flags"),
        ("admin", "/admin/catalog"),
        ("admin", "/admin/categories"),
        ("admin", f"/admin/webhooks?endpoint={w.webhook_id}"),
        ("admin", "/admin/jobs"),
        ("admin", "/admin/audit"),
        ("admin", "/admin/kyc"),
        ("admin", "/admin/kyc?status=approved"),
        ("admin", f"/admin/kyc/{w.kyc_id}"),
        ("admin", "/admin/images"),
        ("admin", f"/studio/streams/{sid}"),
        ("anonymous", "/og"),
        ("viewer", "/og"),
        ("admin", "/admin/og"),
        ("admin", "/admin/festivals"),
        ("admin", f"/studio/radio/{w.radio_id}"),
    ]
