"""OG tiers through the API: admin management, subscribing, upgrades, idempotency, racing
subscribes, renewal and expiry by the 00:00 job, and subscribers-only chat over a real socket."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from halobuzz.core.clock import utcnow
from halobuzz.core.events import OutboxEvent
from halobuzz.economy import og
from halobuzz.economy.models import LedgerAccount, OgSubscription
from tests.conftest import assert_error
from tests.economy.conftest import grant_coins, key_headers, verify
from tests.realtime.support import create_stream, joined

API = "/api/v1"


async def balance(client: Any, user: Any) -> int:
    r = await client.get(f"{API}/wallet", headers=user.headers)
    return int(r.json()["balance"])


async def platform_revenue(app: Any) -> int:
    async with app.runtime.db.session(write=False) as s:
        return int(
            await s.scalar(select(LedgerAccount.balance).where(LedgerAccount.key == "platform_revenue:COIN")) or 0
        )


async def test_tiers_admin_and_public_list(client, admin, fan, make_tier):
    assert (await client.get(f"{API}/og/tiers")).json() == {"items": []}
    two = await make_tier(level=2, monthly_price=900, daily_bonus=20, chat_privileges=["highlighted_messages"])
    one = await make_tier(level=1, monthly_price=300, daily_bonus=5, badge="/static/og/1.png")
    listed = (await client.get(f"{API}/og/tiers")).json()["items"]
    assert [t["level"] for t in listed] == [1, 2]
    assert listed[0] == one and two["chat_privileges"] == ["highlighted_messages"]
    url = f"{API}/admin/og/tiers"
    assert_error(await client.post(url, json={"level": 3, "name": "x", "monthly_price": 1}, headers=fan.headers), 403)
    assert_error(await client.post(url, json={"level": 3, "name": "x", "monthly_price": 1}), 401)
    for body in (
        {"level": 6, "name": "six", "monthly_price": 10},
        {"level": 0, "name": "zero", "monthly_price": 10},
        {"level": 3, "name": "", "monthly_price": 10},
        {"level": 3, "name": "free", "monthly_price": 0},
        {"level": 3, "name": "neg", "monthly_price": 10, "daily_bonus": -1},
        {"level": 3, "name": "extra", "monthly_price": 10, "nope": 1},
    ):
        assert_error(await client.post(url, json=body, headers=admin.headers), 422, "invalid_input")
    assert_error(
        await client.post(
            url, json={"level": 3, "name": "p", "monthly_price": 10, "chat_privileges": ["fly"]}, headers=admin.headers
        ),
        422,
        "invalid_privileges",
    )
    assert_error(
        await client.post(url, json={"level": 1, "name": "again", "monthly_price": 10}, headers=admin.headers),
        409,
        "level_taken",
    )
    assert_error(
        await client.post(url, json={"level": 3, "name": one["name"], "monthly_price": 10}, headers=admin.headers),
        409,
        "name_taken",
    )
    r = await client.patch(f"{url}/{one['id']}", json={"monthly_price": 350, "is_active": False}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["monthly_price"] == 350
    assert [t["level"] for t in (await client.get(f"{API}/og/tiers")).json()["items"]] == [2]
    assert [t["level"] for t in (await client.get(url, headers=admin.headers)).json()["items"]] == [1, 2]
    assert_error(await client.patch(f"{url}/{two['id']}", json={"level": 1}, headers=admin.headers), 409, "level_taken")
    assert_error(
        await client.patch(f"{url}/{fan.id}", json={"monthly_price": 5}, headers=admin.headers), 404, "tier_not_found"
    )


async def test_subscribe_charges_once_and_announces(app, client, fan, make_tier):
    tier = await make_tier(level=1, monthly_price=300)
    assert_error(await client.get(f"{API}/og/subscription", headers=fan.headers), 404, "not_subscribed")
    before_revenue = await platform_revenue(app)
    # Not enough coins: refused, nothing changes.
    r = await client.post(f"{API}/og/subscription", json={"level": 1}, headers=key_headers(fan))
    assert_error(r, 409, "insufficient_funds")
    assert_error(await client.get(f"{API}/og/subscription", headers=fan.headers), 404, "not_subscribed")
    await grant_coins(app, fan.id, 1000)
    headers = key_headers(fan, "og-1")
    r = await client.post(f"{API}/og/subscription", json={"level": 1}, headers=headers)
    assert r.status_code == 200, r.text
    sub = r.json()
    assert sub["tier"]["id"] == tier["id"] and sub["active"] and sub["auto_renew"]
    assert sub["coins_charged"] == 300 and sub["balance"] == 700
    assert await balance(client, fan) == 700
    assert await platform_revenue(app) - before_revenue == 300
    # A retry with the same key answers with the membership and charges nothing.
    again = await client.post(f"{API}/og/subscription", json={"level": 1}, headers=headers)
    assert again.status_code == 200 and again.json()["transaction_id"] == sub["transaction_id"]
    assert await balance(client, fan) == 700
    assert_error(
        await client.post(f"{API}/og/subscription", json={"level": 2}, headers=headers), 409, "idempotency_key_reused"
    )
    assert_error(
        await client.post(f"{API}/og/subscription", json={"level": 1}, headers=key_headers(fan)),
        409,
        "already_subscribed",
    )
    mine = (await client.get(f"{API}/og/subscription", headers=fan.headers)).json()
    assert mine["id"] == sub["id"] and mine["expires_at"] == sub["expires_at"]
    async with app.runtime.db.session(write=False) as s:
        rows = (await s.scalars(select(OutboxEvent).where(OutboxEvent.type == "subscription.new"))).all()
    assert [(e.data["user_id"], e.data["tier"], e.data["subscription_id"]) for e in rows] == [
        (str(fan.id), tier["name"], sub["id"])
    ]
    assert rows[0].data["expires_at"]
    for body in ({"level": 9}, {}, {"level": "one"}):
        assert_error(await client.post(f"{API}/og/subscription", json=body, headers=key_headers(fan)), 422)
    assert_error(await client.post(f"{API}/og/subscription", json={"level": 1}, headers=fan.headers), 422)
    assert_error(
        await client.post(f"{API}/og/subscription", json={"level": 3}, headers=key_headers(fan)), 404, "tier_not_found"
    )
    assert (await verify(app)).ok


async def test_upgrade_is_prorated_and_downgrade_refused(app, client, fan, make_tier):
    await make_tier(level=1, monthly_price=300)
    await make_tier(level=3, monthly_price=1000)
    await grant_coins(app, fan.id, 5000)
    assert (await client.post(f"{API}/og/subscription", json={"level": 3}, headers=key_headers(fan))).status_code == 200
    assert_error(
        await client.post(f"{API}/og/subscription", json={"level": 1}, headers=key_headers(fan)),
        409,
        "downgrade_not_allowed",
    )
    # Halfway through the level-3 term, move the term back and upgrade from level 1 instead.
    async with app.runtime.db.session() as s:
        await s.execute(update(OgSubscription).values(status="expired", expires_at=utcnow() - timedelta(seconds=1)))
    r = await client.post(f"{API}/og/subscription", json={"level": 1}, headers=key_headers(fan))
    assert r.status_code == 200 and r.json()["coins_charged"] == 300
    now = utcnow()
    async with app.runtime.db.session() as s:
        await s.execute(
            update(OgSubscription).values(
                current_period_start=now - timedelta(days=15), expires_at=now + timedelta(days=15)
            )
        )
    r = await client.post(f"{API}/og/subscription", json={"level": 3}, headers=key_headers(fan))
    assert r.status_code == 200, r.text
    # 1000 less the unused half of 300 (150, floored by the seconds elapsed).
    assert r.json()["coins_charged"] in (850, 851) and r.json()["tier"]["level"] == 3
    assert await balance(client, fan) == 5000 - 1000 - 300 - r.json()["coins_charged"]
    assert (await verify(app)).ok


async def test_racing_subscribes_charge_once(app, client, fan, make_tier):
    await make_tier(level=2, monthly_price=400)
    await grant_coins(app, fan.id, 2000)
    results = await asyncio.gather(
        *(client.post(f"{API}/og/subscription", json={"level": 2}, headers=key_headers(fan)) for _ in range(4))
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409], [r.text for r in results]
    assert all(r.json()["error"]["code"] == "already_subscribed" for r in results if r.status_code == 409)
    same_key = key_headers(fan, "same")
    await grant_coins(app, fan.id, 0 + 1)  # a posting between the races
    assert await balance(client, fan) == 1601
    # Racing retries of one key (after the membership ended) charge once too.
    async with app.runtime.db.session() as s:
        await s.execute(update(OgSubscription).values(expires_at=utcnow() - timedelta(seconds=1)))
    results = await asyncio.gather(
        *(client.post(f"{API}/og/subscription", json={"level": 2}, headers=same_key) for _ in range(3))
    )
    assert [r.status_code for r in results] == [200, 200, 200]
    assert len({r.json()["transaction_id"] for r in results}) == 1
    assert await balance(client, fan) == 1201
    assert (await verify(app)).ok


async def test_cancel_renewal_and_expiry(app, client, make_user, make_tier):
    await make_tier(level=1, monthly_price=100, daily_bonus=0)
    payer, broke, quitter = await make_user(), await make_user(), await make_user()
    for user, coins in ((payer, 250), (broke, 100), (quitter, 300)):
        await grant_coins(app, user.id, coins)
        r = await client.post(f"{API}/og/subscription", json={"level": 1}, headers=key_headers(user))
        assert r.status_code == 200, r.text
    r = await client.post(f"{API}/og/subscription/cancel", headers=quitter.headers)
    assert r.status_code == 200 and r.json()["auto_renew"] is False and r.json()["active"]
    r = await client.patch(f"{API}/og/subscription", json={"auto_renew": "x"}, headers=quitter.headers)
    assert_error(r, 422)
    assert_error(await client.post(f"{API}/og/subscription/cancel", headers=(await make_user()).headers), 404)
    # Every term ends an hour from now; the job renews those it can charge.
    now = utcnow()
    ends = now + timedelta(hours=1)
    async with app.runtime.db.session() as s:
        await s.execute(update(OgSubscription).values(expires_at=ends))
    result = await og.distribute_daily_bonus(app.runtime, scheduled_for=now)
    assert result["renewals"] == {"renewed": 1, "expired": 0, "unpaid": 1}
    again = await og.distribute_daily_bonus(app.runtime, scheduled_for=now)
    assert again["renewals"]["renewed"] == 0
    mine = (await client.get(f"{API}/og/subscription", headers=payer.headers)).json()
    assert mine["active"] and mine["expires_at"] > (ends + timedelta(days=29)).isoformat()[:19]
    assert await balance(client, payer) == 50
    assert await balance(client, broke) == 0 and await balance(client, quitter) == 200
    # After the end, the next run expires the unpaid and cancelled memberships.
    later = ends + timedelta(minutes=1)
    result = await og.distribute_daily_bonus(app.runtime, scheduled_for=later)
    assert result["renewals"] == {"renewed": 0, "expired": 2, "unpaid": 1}
    async with app.runtime.db.session(write=False) as s:
        statuses = dict((await s.execute(select(OgSubscription.user_id, OgSubscription.status))).all())
    assert statuses == {payer.id: "active", broke.id: "expired", quitter.id: "expired"}
    assert_error(await client.post(f"{API}/og/subscription/cancel", headers=broke.headers), 409, "subscription_ended")
    assert (await verify(app)).ok


async def test_subscribers_only_chat_admits_og_members(app, live, sockets, make_user, make_tier):
    await make_tier(level=1, monthly_price=100)
    server = await live()
    owner, member, viewer, moderator = (
        await make_user(roles=["creator"]),
        await make_user(),
        await make_user(),
        await make_user(),
    )
    stream_id = await create_stream(server, owner)
    r = await server.http.put(f"/api/v1/streams/{stream_id}/chat/moderators/{moderator.id}", headers=owner.headers)
    assert r.status_code in (200, 201), r.text
    r = await server.http.patch(
        f"/api/v1/streams/{stream_id}/chat/modes", json={"subscribers_only": True}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    clients = {}
    for name, user in (("owner", owner), ("member", member), ("viewer", viewer), ("moderator", moderator)):
        clients[name] = sockets()
        await clients[name].connect(server, user.access_token)
        await joined(clients[name], stream_id)

    async def say(name: str, text: str) -> dict[str, Any]:
        return await clients[name].call("send_message", {"stream_id": stream_id, "text": text})  # type: ignore[no-any-return]

    for name in ("member", "viewer"):
        ack = await say(name, "hello")
        assert ack["ok"] is False and ack["error"]["code"] == "subscribers_only", ack
    assert (await say("owner", "owner talks"))["ok"]
    assert (await say("moderator", "moderator talks"))["ok"]
    await grant_coins(app, member.id, 100)
    r = await server.http.post("/api/v1/og/subscription", json={"level": 1}, headers=key_headers(member))
    assert r.status_code == 200, r.text
    assert (await say("member", "member talks"))["ok"]
    ack = await say("viewer", "still me")
    assert ack["ok"] is False and ack["error"]["code"] == "subscribers_only"
    # A lapsed membership no longer counts.
    async with app.runtime.db.session() as s:
        await s.execute(update(OgSubscription).values(expires_at=utcnow() - timedelta(seconds=1)))
    ack = await say("member", "lapsed")
    assert ack["ok"] is False and ack["error"]["code"] == "subscribers_only"
