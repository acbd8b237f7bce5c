"""Daily bonus and festivals through the API: one claim per local day (racing claims credit once),
the OG tier bonus shared with the 00:00 job, festival CRUD, the multiplier, festival gifts and the
01:00 job."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

from halobuzz.core.clock import utcnow
from halobuzz.economy import festivals, og
from halobuzz.economy.models import Festival
from tests.conftest import assert_error
from tests.economy.conftest import grant_coins, key_headers, verify

API = "/api/v1"


async def balance(client: Any, user: Any) -> int:
    return int((await client.get(f"{API}/wallet", headers=user.headers)).json()["balance"])


def window(start_hours: float, end_hours: float) -> dict[str, str]:
    now = utcnow()
    return {
        "starts_at": (now + timedelta(hours=start_hours)).isoformat(),
        "ends_at": (now + timedelta(hours=end_hours)).isoformat(),
    }


async def test_claim_once_per_local_day(app, client, make_user):
    user = await make_user(timezone="Asia/Kathmandu")
    status = (await client.get(f"{API}/bonus/daily", headers=user.headers)).json()
    today = utcnow().astimezone(ZoneInfo("Asia/Kathmandu")).date().isoformat()
    assert status["local_date"] == today and status["timezone"] == "Asia/Kathmandu"
    assert status["claimed"] is False and status["base_coins"] == 10 and status["bonus_multiplier"] == 1.0
    r = await client.post(f"{API}/bonus/daily/claim", headers=user.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["coins_credited"] == 10 and body["balance"] == 10 and body["claimed"]
    assert body["next_claim_at"].startswith(
        (utcnow().astimezone(ZoneInfo("Asia/Kathmandu")) + timedelta(days=1)).date().isoformat()
    )
    refused = assert_error(await client.post(f"{API}/bonus/daily/claim", headers=user.headers), 409, "already_claimed")
    assert "next_claim_at" in refused["details"]
    assert (await client.get(f"{API}/bonus/daily", headers=user.headers)).json()["claimed"] is True
    assert await balance(client, user) == 10
    history = (await client.get(f"{API}/wallet/transactions", headers=user.headers)).json()["items"]
    assert [(i["kind"], i["amount"]) for i in history] == [("daily_bonus", 10)]
    assert_error(await client.post(f"{API}/bonus/daily/claim"), 401)
    # A zone the database does not know counts as UTC.
    odd = await make_user(timezone="Mars/Olympus")
    assert (await client.get(f"{API}/bonus/daily", headers=odd.headers)).json()["timezone"] == "UTC"
    assert (await verify(app)).ok


async def test_racing_claims_credit_once(app, client, make_user):
    user = await make_user()
    results = await asyncio.gather(*(client.post(f"{API}/bonus/daily/claim", headers=user.headers) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409, 409]
    assert await balance(client, user) == 10
    assert (await verify(app)).ok


async def test_og_bonus_with_claim_and_job(app, client, make_user, make_tier):
    await make_tier(level=2, monthly_price=100, daily_bonus=40)
    claimer, waiter, plain = await make_user(), await make_user(), await make_user()
    for user in (claimer, waiter):
        await grant_coins(app, user.id, 100)
        assert (
            await client.post(f"{API}/og/subscription", json={"level": 2}, headers=key_headers(user))
        ).status_code == 200
    # The claim pays the base and the tier bonus; the job then skips that member for the day.
    r = await client.post(f"{API}/bonus/daily/claim", headers=claimer.headers)
    assert r.status_code == 200 and r.json()["coins_credited"] == 50 and r.json()["og_bonus_coins"] == 40
    now = utcnow()
    result = await og.distribute_daily_bonus(app.runtime, scheduled_for=now)
    assert result["bonus"] == {"credited": 1, "skipped": 1, "coins": 40}
    assert (await og.distribute_daily_bonus(app.runtime, scheduled_for=now))["bonus"] == {
        "credited": 0,
        "skipped": 2,
        "coins": 0,
    }
    assert await balance(client, claimer) == 50 and await balance(client, waiter) == 40
    # The member the job paid gets only the base when claiming.
    r = await client.post(f"{API}/bonus/daily/claim", headers=waiter.headers)
    assert r.json()["coins_credited"] == 10 and r.json()["og_bonus_credited"] is True
    assert (await client.post(f"{API}/bonus/daily/claim", headers=plain.headers)).json()["coins_credited"] == 10
    assert (await verify(app)).ok


async def test_festival_admin_api_and_bad_input(client, admin, fan):
    url = f"{API}/admin/festivals"
    body = {"name": "Dashain", "regions": ["NP", "IN"], "bonus_multiplier": 1.5, **window(-1, 48)}
    assert_error(await client.post(url, json=body, headers=fan.headers), 403)
    r = await client.post(url, json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    fest = r.json()
    assert fest["is_active"] and fest["regions"] == ["IN", "NP"] and fest["bonus_multiplier"] == 1.5
    later = await client.post(
        url, json={"name": "Tihar", "bonus_multiplier": 2, **window(24, 48)}, headers=admin.headers
    )
    assert later.status_code == 201 and later.json()["is_active"] is False
    for bad in (
        {**body, "name": "x", **window(5, 1)},
        {**body, "name": "y", "bonus_multiplier": 0.5},
        {**body, "name": "z", "regions": ["Nepal"]},
        {**body, "name": "w", "starts_at": "2026-12-01T00:00:00"},
        {**body, "name": ""},
    ):
        code = "invalid_window" if bad.get("name") == "x" else "invalid_input"
        assert_error(await client.post(url, json=bad, headers=admin.headers), 422, code)
    assert_error(await client.post(url, json=body, headers=admin.headers), 409, "name_taken")
    active = (await client.get(f"{API}/festivals")).json()["items"]
    assert [f["name"] for f in active] == ["Dashain"]
    assert [f["name"] for f in (await client.get(f"{API}/festivals?region=np")).json()["items"]] == ["Dashain"]
    assert (await client.get(f"{API}/festivals?region=TH")).json()["items"] == []
    assert_error(await client.get(f"{API}/festivals?region=THA"), 422)
    r = await client.patch(f"{url}/{fest['id']}", json={"enabled": False}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert (await client.get(f"{API}/festivals")).json()["items"] == []
    assert_error(
        await client.patch(f"{url}/{fest['id']}", json={"ends_at": window(-5, -4)["ends_at"]}, headers=admin.headers),
        422,
        "invalid_window",
    )
    assert_error(
        await client.patch(f"{url}/{fest['id']}", json={"name": "Tihar"}, headers=admin.headers), 409, "name_taken"
    )
    assert [f["name"] for f in (await client.get(url, headers=admin.headers)).json()["items"]] == ["Dashain", "Tihar"]
    assert (await client.delete(f"{url}/{fest['id']}", headers=admin.headers)).status_code == 204
    assert_error(await client.get(f"{url}/{fest['id']}", headers=admin.headers), 404, "festival_not_found")
    assert_error(await client.delete(f"{url}/{fest['id']}", headers=admin.headers), 404, "festival_not_found")


async def test_festival_multiplier_applies_to_daily_bonus_by_region(app, client, admin, make_user):
    r = await client.post(
        f"{API}/admin/festivals",
        json={"name": "Holi", "regions": ["NP"], "bonus_multiplier": 1.5, **window(-1, 5)},
        headers=admin.headers,
    )
    assert r.status_code == 201
    r = await client.post(
        f"{API}/admin/festivals",
        json={"name": "Everywhere", "bonus_multiplier": 1.2, **window(-1, 5)},
        headers=admin.headers,
    )
    nepali, thai = await make_user(country="NP"), await make_user(country="TH")
    got = (await client.post(f"{API}/bonus/daily/claim", headers=nepali.headers)).json()
    assert got["coins_credited"] == 15 and got["bonus_multiplier"] == 1.5
    got = (await client.post(f"{API}/bonus/daily/claim", headers=thai.headers)).json()
    assert got["coins_credited"] == 12 and got["bonus_multiplier"] == 1.2
    assert (await verify(app)).ok


async def test_festival_gifts_and_the_activation_job(app, client, admin, fan, creator, live_stream, make_gift):
    r = await client.post(
        f"{API}/admin/festivals",
        json={"name": "Lantern", "bonus_multiplier": 1, **window(2, 30)},
        headers=admin.headers,
    )
    fest = r.json()
    gift = await make_gift(coin_price=5, festival_id=fest["id"])
    plain = await make_gift(coin_price=5)
    assert gift["festival_id"] == fest["id"]
    assert_error(
        await client.post(
            f"{API}/admin/gifts", json={"name": "g", "coin_price": 1, "festival_id": str(fan.id)}, headers=admin.headers
        ),
        422,
        "festival_not_found",
    )
    offered = {g["id"] for g in (await client.get(f"{API}/gifts")).json()["items"]}
    assert plain["id"] in offered and gift["id"] not in offered
    stream_id = await live_stream(creator)
    await grant_coins(app, fan.id, 100)
    send = {"gift_id": gift["id"], "quantity": 1}
    assert_error(
        await client.post(f"{API}/streams/{stream_id}/gifts", json=send, headers=key_headers(fan)),
        404,
        "gift_not_found",
    )
    # The festival's window begins; the 01:00 job marks it active and its gift is on offer.
    async with app.runtime.db.session() as s:
        await s.execute(update(Festival).values(starts_at=utcnow() - timedelta(minutes=1)))
    assert (await client.get(f"{API}/festivals")).json()["items"][0]["is_active"] is False
    assert await festivals.activate_festivals(app.runtime, scheduled_for=utcnow()) == {"activated": 1, "deactivated": 0}
    assert await festivals.activate_festivals(app.runtime, scheduled_for=utcnow()) == {"activated": 0, "deactivated": 0}
    assert (await client.get(f"{API}/festivals")).json()["items"][0]["is_active"] is True
    assert gift["id"] in {g["id"] for g in (await client.get(f"{API}/gifts")).json()["items"]}
    r = await client.post(f"{API}/streams/{stream_id}/gifts", json=send, headers=key_headers(fan))
    assert r.status_code == 200, r.text
    async with app.runtime.db.session() as s:
        await s.execute(update(Festival).values(ends_at=utcnow() - timedelta(seconds=1)))
    assert await festivals.activate_festivals(app.runtime, scheduled_for=utcnow()) == {"activated": 0, "deactivated": 1}
    assert (await client.get(f"{API}/festivals")).json()["items"] == []
    assert gift["id"] not in {g["id"] for g in (await client.get(f"{API}/gifts")).json()["items"]}
    # Clearing the festival makes it an ordinary gift again.
    r = await client.patch(f"{API}/admin/gifts/{gift['id']}", json={"festival_id": None}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["festival_id"] is None
    assert gift["id"] in {g["id"] for g in (await client.get(f"{API}/gifts")).json()["items"]}
