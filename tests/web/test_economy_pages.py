"""Economy pages over HTTP: OG tiers and the membership (subscribe, replayed form, upgrade,
downgrade refused, cancel, auto-renew back on), the daily bonus card on the wallet (claim, claimed
today, a festival's multiplier), the throne on the stream page, the home page's festivals banner,
and the admin pages for festivals, OG tiers and festival gifts in the catalog."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest

from halobuzz.app import HaloBuzzApp
from halobuzz.core.clock import utcnow
from tests.economy.conftest import grant_coins
from tests.web.conftest import TOTP_SECRET, alert_of, csrf_of

API = "/api/v1"


def _form_of(html: str, level: int) -> dict[str, str]:
    """The hidden fields of the subscribe form of tier ``level`` on /og."""
    block = re.search(rf'id="og-tier-{level}".*?</form>', html, re.S)
    assert block, html[-2000:]
    fields = dict(re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', block.group(0)))
    fields.pop("csrf_token", None)
    return fields


async def _tier(client: httpx.AsyncClient, admin: Any, level: int, price: int, **fields: Any) -> dict[str, Any]:
    body = {"level": level, "name": f"OG {level}", "monthly_price": price, **fields}
    r = await client.post(f"{API}/admin/og/tiers", json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _festival(client: httpx.AsyncClient, admin: Any, name: str, **fields: Any) -> dict[str, Any]:
    now = utcnow()
    body = {
        "name": name,
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=2)).isoformat(),
        **fields,
    }
    r = await client.post(f"{API}/admin/festivals", json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _balance(client: httpx.AsyncClient, user: Any) -> int:
    r = await client.get(f"{API}/wallet", headers=user.headers)
    return int(r.json()["balance"])


async def _membership(client: httpx.AsyncClient, user: Any) -> dict[str, Any]:
    r = await client.get(f"{API}/og/subscription", headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def admin(make_admin: Any) -> Any:
    return await make_admin("econadmin")


async def test_og_page_subscribe_replay_upgrade_downgrade_and_cancel(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, browser_for: Any, admin: Any
) -> None:
    await _tier(client, admin, 1, 300, daily_bonus=5, chat_privileges=["og_emotes"])
    await _tier(client, admin, 2, 500, chat_privileges=["highlighted_messages", "bypass_slow_mode"])
    await _tier(client, admin, 3, 600, badge="/static/favicon.svg")
    await _tier(client, admin, 4, 900, is_active=False)

    anonymous = await client.get("/og")
    assert anonymous.status_code == 200
    assert "300 coins a month" in anonymous.text and "5 extra coins every day" in anonymous.text
    assert "OG emotes" in anonymous.text and "Highlighted messages" in anonymous.text
    assert 'id="og-tier-4"' not in anonymous.text  # not on sale
    assert 'action="/og/subscribe"' not in anonymous.text and 'href="/login?next=/og"' in anonymous.text

    fan = await make_user("ogfan")
    web = await browser_for(fan)
    page = await web.get("/og")
    assert 'id="og-none"' in page.text and 'id="balance">0<' in page.text
    # Keys differ per form render: two renders never share one.
    assert _form_of(page.text, 1)["idempotency_key"] != _form_of((await web.get("/og")).text, 1)["idempotency_key"]

    # Not enough coins: the API's message and a way to the wallet; nothing changes.
    broke = await web.post("/og/subscribe", data={"csrf_token": csrf_of(page.text), **_form_of(page.text, 2)})
    assert broke.status_code == 409 and alert_of(broke.text)
    assert 'id="og-buy-coins"><a href="/wallet">' in broke.text
    assert (await client.get(f"{API}/og/subscription", headers=fan.headers)).status_code == 404

    # Without the CSRF token: refused, nothing charged.
    await grant_coins(app, fan.id, 1000)
    forged = await web.post("/og/subscribe", data=_form_of(page.text, 2))
    assert forged.status_code == 403 and await _balance(client, fan) == 1000

    form = {"csrf_token": csrf_of(page.text), **_form_of(page.text, 2)}
    done = await web.post("/og/subscribe", data=form)
    assert done.status_code == 303 and done.headers["location"] == "/og?notice=og_subscribed"
    shown = await web.get(done.headers["location"])
    assert "You are now an OG member." in shown.text
    assert 'id="og-current">OG 2<' in shown.text and "Renews " in shown.text
    assert re.search(r'id="og-tier-2".*?<button type="submit" class="secondary" disabled>Your tier<', shown.text, re.S)
    assert await _balance(client, fan) == 500
    # The same form sent again (a double click, a resubmission) replays: charged once.
    again = await web.post("/og/subscribe", data=form)
    assert again.status_code == 303 and await _balance(client, fan) == 500

    # A lower tier while this one runs: the API's refusal is shown, with its status.
    lower = await web.post("/og/subscribe", data={"csrf_token": csrf_of(shown.text), **_form_of(shown.text, 1)})
    assert lower.status_code == 409 and "higher OG tier" in alert_of(lower.text)
    assert (await _membership(client, fan))["tier"]["level"] == 2

    # An unknown level: a 422 with the field, nothing changes.
    bad = await web.post(
        "/og/subscribe", data={"csrf_token": csrf_of(shown.text), "level": "nine", "idempotency_key": "k1"}
    )
    assert bad.status_code == 422 and "level" in alert_of(bad.text)

    # Upgrade: the price less the unused part of the current term (499 or 500 of 500).
    assert re.search(r'id="og-tier-3".*?>Upgrade<', shown.text, re.S)
    up = await web.post("/og/subscribe", data={"csrf_token": csrf_of(shown.text), **_form_of(shown.text, 3)})
    assert up.status_code == 303
    assert (await _membership(client, fan))["tier"]["level"] == 3
    assert 399 <= await _balance(client, fan) <= 400

    # Cancel: auto-renew off, the term runs to its end; then back on.
    shown = await web.get("/og")
    cancelled = await web.post("/og/auto-renew", data={"csrf_token": csrf_of(shown.text), "auto_renew": "off"})
    assert cancelled.status_code == 303 and cancelled.headers["location"] == "/og?notice=og_cancelled"
    shown = await web.get("/og")
    assert "(auto-renew is off)" in shown.text and 'id="og-renew"' in shown.text
    membership = await _membership(client, fan)
    assert membership["auto_renew"] is False and membership["active"] is True
    renewed = await web.post("/og/auto-renew", data={"csrf_token": csrf_of(shown.text), "auto_renew": "on"})
    assert renewed.headers["location"] == "/og?notice=og_renewing"
    assert (await _membership(client, fan))["auto_renew"] is True
    assert 'id="og-cancel"' in (await web.get("/og")).text

    # Signed out: the forms send people to sign in.
    assert (await client.post("/og/subscribe", data={"level": "1"})).status_code == 403  # no CSRF cookie


async def test_daily_bonus_card_on_the_wallet(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, browser_for: Any, admin: Any
) -> None:
    user = await make_user("bonusfan", timezone="Asia/Kathmandu")
    web = await browser_for(user)
    wallet = await web.get("/wallet")
    assert 'id="bonus-worth">Today&#39;s bonus: 10 coins' in wallet.text and 'id="bonus-claim"' in wallet.text
    assert "(Asia/Kathmandu)" in wallet.text

    claimed = await web.post("/wallet/bonus", data={"csrf_token": csrf_of(wallet.text)})
    assert claimed.status_code == 303 and claimed.headers["location"] == "/wallet?notice=bonus_claimed"
    shown = await web.get(claimed.headers["location"])
    assert "Daily bonus claimed." in shown.text and 'id="balance">10<' in shown.text
    assert 'id="bonus-claimed"' in shown.text and 'id="bonus-claim"' not in shown.text
    assert "<td>Daily bonus</td>" in shown.text  # the history names the ledger kind
    status = (await client.get(f"{API}/bonus/daily", headers=user.headers)).json()
    next_at = datetime.fromisoformat(status["next_claim_at"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert f"Next bonus from {next_at} UTC" in shown.text

    # A second claim the same day (an old tab): the API's 409 is shown, nothing credited.
    twice = await web.post("/wallet/bonus", data={"csrf_token": csrf_of(wallet.text)})
    assert twice.status_code == 409 and alert_of(twice.text)
    assert await _balance(client, user) == 10
    assert (await web.post("/wallet/bonus", data={})).status_code == 403

    # A festival of the user's country doubles it, and the card says so.
    await _festival(client, admin, "Tihar", regions=["NP"], bonus_multiplier=2.0)
    nepali = await make_user("bonusnp", country="NP")
    web2 = await browser_for(nepali)
    card = await web2.get("/wallet")
    assert "Today&#39;s bonus: 20 coins" in card.text and 'id="bonus-festival">Festival bonus: \u00d72<' in card.text
    await web2.post("/wallet/bonus", data={"csrf_token": csrf_of(card.text)})
    assert await _balance(client, nepali) == 20


async def test_throne_on_the_stream_page(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, browser_for: Any
) -> None:
    owner = await make_user("thronehost", roles=["creator"])
    fan = await make_user("thronefan", display_name="Throne Fan")
    r = await client.post(f"{API}/streams", json={"title": "Throne test"}, headers=owner.headers)
    sid = r.json()["id"]
    assert (await client.post(f"{API}/streams/{sid}/start", headers=owner.headers)).status_code == 200
    page = await client.get(f"/streams/{sid}")
    assert re.search(r'id="throne-empty">nobody yet<', page.text)
    assert re.search(r'id="throne-holder" href="/users/" hidden>', page.text)

    gifts = (await client.get(f"{API}/gifts")).json()["items"]
    gift = min(gifts, key=lambda g: g["coin_price"])
    await grant_coins(app, fan.id, gift["coin_price"] * 3)
    for _ in range(2):
        sent = await client.post(
            f"{API}/streams/{sid}/gifts",
            json={"gift_id": gift["id"], "quantity": 1},
            headers={**fan.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert sent.status_code in (200, 201), sent.text
    page = await (await browser_for(fan)).get(f"/streams/{sid}")
    coins = gift["coin_price"] * 2
    assert 'id="throne-holder" href="/users/thronefan">Throne Fan<' in page.text
    assert f'id="throne-coins">{coins} coins<' in page.text
    assert re.search(r'id="throne-empty" hidden>', page.text)
    assert f'data-holder="{fan.id}"' in page.text


async def test_home_page_festivals_banner(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, browser_for: Any, admin: Any
) -> None:
    assert 'id="festivals"' not in (await client.get("/")).text
    await _festival(client, admin, "Dashain", regions=["NP"], bonus_multiplier=1.5)
    await _festival(client, admin, "Diwali", regions=["IN"])
    await _festival(client, admin, "Everywhere Day")
    await _festival(client, admin, "Switched off", enabled=False)
    now = utcnow()
    await _festival(
        client,
        admin,
        "Next year",
        starts_at=(now + timedelta(days=300)).isoformat(),
        ends_at=(now + timedelta(days=301)).isoformat(),
    )

    anonymous = (await client.get("/")).text
    banner = re.search(r'id="festivals".*?</section>', anonymous, re.S).group(0)  # type: ignore[union-attr]
    for name in ("Dashain", "Diwali", "Everywhere Day"):
        assert name in banner
    assert "Switched off" not in banner and "Next year" not in banner
    assert "bonus \u00d71.5" in banner

    nepali = await browser_for(await make_user("homenp", country="NP"))
    banner = re.search(r'id="festivals".*?</section>', (await nepali.get("/")).text, re.S).group(0)  # type: ignore[union-attr]
    assert "Dashain" in banner and "Everywhere Day" in banner and "Diwali" not in banner


async def test_admin_festivals_page(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, browser_for: Any, admin: Any
) -> None:
    panel = await browser_for(admin, pyotp.TOTP(TOTP_SECRET).now())
    page = await panel.get("/admin/festivals")
    assert page.status_code == 200 and "No festivals yet." in page.text and 'href="/admin/festivals"' in page.text
    token = csrf_of(page.text)
    form = {
        "csrf_token": token,
        "name": "Holi",
        "regions": "np in",
        "starts_at": "2026-03-01T00:00",
        "ends_at": "2026-02-01T00:00",
        "bonus_multiplier": "2.5",
        "enabled": "1",
    }
    # The end before the start: the API's 422, nothing stored.
    wrong = await panel.post("/admin/festivals", data=form)
    assert wrong.status_code == 422 and alert_of(wrong.text)
    assert (await client.get(f"{API}/admin/festivals", headers=admin.headers)).json()["items"] == []

    start, end = utcnow() - timedelta(hours=2), utcnow() + timedelta(days=3)
    form |= {"starts_at": start.strftime("%Y-%m-%dT%H:%M"), "ends_at": end.strftime("%Y-%m-%dT%H:%M")}
    made = await panel.post("/admin/festivals", data=form)
    assert made.status_code == 303 and made.headers["location"] == "/admin/festivals?notice=saved"
    (festival,) = (await client.get(f"{API}/admin/festivals", headers=admin.headers)).json()["items"]
    assert festival["regions"] == ["IN", "NP"] and festival["bonus_multiplier"] == 2.5
    assert festival["starts_at"].startswith(start.strftime("%Y-%m-%dT%H:%M")) and festival["is_active"] is True
    # The same name again: the API's 409.
    taken = await panel.post("/admin/festivals", data=form)
    assert taken.status_code == 409 and alert_of(taken.text)

    page = await panel.get("/admin/festivals")
    fid = festival["id"]
    assert f'value="{start.strftime("%Y-%m-%dT%H:%M")}"' in page.text and "running" in page.text
    edited = await panel.post(
        f"/admin/festivals/{fid}",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "Holi 2026",
            "regions": "NP",
            "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": end.strftime("%Y-%m-%dT%H:%M"),
            "bonus_multiplier": "3",
            "enabled": "1",
        },
    )
    assert edited.status_code == 303
    got = (await client.get(f"{API}/admin/festivals/{fid}", headers=admin.headers)).json()
    assert got["name"] == "Holi 2026" and got["regions"] == ["NP"] and got["bonus_multiplier"] == 3.0
    assert "Holi 2026" in (await client.get("/")).text

    off = await panel.post(f"/admin/festivals/{fid}/disable", data={"csrf_token": csrf_of(page.text)})
    assert off.status_code == 303
    assert (await client.get(f"{API}/admin/festivals/{fid}", headers=admin.headers)).json()["enabled"] is False
    assert 'id="festivals"' not in (await client.get("/")).text
    page = await panel.get("/admin/festivals")
    assert f'action="/admin/festivals/{fid}/enable"' in page.text
    on = await panel.post(f"/admin/festivals/{fid}/enable", data={"csrf_token": csrf_of(page.text)})
    assert on.status_code == 303
    assert (await client.get(f"{API}/admin/festivals/{fid}", headers=admin.headers)).json()["enabled"] is True

    gone = await panel.post(f"/admin/festivals/{fid}/delete", data={"csrf_token": csrf_of(page.text)})
    assert gone.headers["location"] == "/admin/festivals?notice=festival_deleted"
    assert (await client.get(f"{API}/admin/festivals/{fid}", headers=admin.headers)).status_code == 404
    again = await panel.post(f"/admin/festivals/{fid}/delete", data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 404 and alert_of(again.text)
    assert (await panel.post(f"/admin/festivals/{fid}/explode", data={"csrf_token": token})).status_code == 404
    assert (await panel.post(f"/admin/festivals/{fid}/delete", data={})).status_code == 403

    moderator = await browser_for(await make_user("festmod", roles=["moderator"]))
    assert (await moderator.get("/admin/festivals")).status_code == 403
    assert (await moderator.get("/admin/og")).status_code == 403


async def test_admin_og_tiers_page(app: HaloBuzzApp, client: httpx.AsyncClient, browser_for: Any, admin: Any) -> None:
    panel = await browser_for(admin, pyotp.TOTP(TOTP_SECRET).now())
    page = await panel.get("/admin/og")
    assert page.status_code == 200 and "No OG tiers are on sale." in page.text
    token = csrf_of(page.text)
    base = {"csrf_token": token, "level": "1", "name": "Bronze", "monthly_price": "300", "daily_bonus": "5"}
    made = await panel.post(
        "/admin/og/tiers",
        data={**base, "badge": "/static/favicon.svg", "chat_privileges": ["og_emotes", "custom_color"]},
    )
    assert made.status_code == 303, made.text[-1500:]
    (tier,) = (await client.get(f"{API}/admin/og/tiers", headers=admin.headers)).json()["items"]
    assert tier["name"] == "Bronze" and sorted(tier["chat_privileges"]) == ["custom_color", "og_emotes"]
    assert tier["daily_bonus"] == 5 and tier["badge"] == "/static/favicon.svg"

    taken = await panel.post("/admin/og/tiers", data={**base, "name": "Other"})
    assert taken.status_code == 409 and alert_of(taken.text)
    out_of_range = await panel.post("/admin/og/tiers", data={**base, "level": "9", "name": "Nine"})
    assert out_of_range.status_code == 422 and "level" in alert_of(out_of_range.text)
    assert len((await client.get(f"{API}/admin/og/tiers", headers=admin.headers)).json()["items"]) == 1

    page = await panel.get("/admin/og")
    assert 'value="og_emotes" checked' in page.text and 'value="subscriber_chat" >' in page.text
    edited = await panel.post(
        f"/admin/og/tiers/{tier['id']}",
        data={**base, "csrf_token": csrf_of(page.text), "monthly_price": "350", "chat_privileges": "subscriber_chat"},
    )
    assert edited.status_code == 303
    (tier,) = (await client.get(f"{API}/admin/og/tiers", headers=admin.headers)).json()["items"]
    assert tier["monthly_price"] == 350 and tier["chat_privileges"] == ["subscriber_chat"]
    assert tier["is_active"] is False  # the box was left unticked: off sale
    assert 'id="og-tier-1"' not in (await client.get("/og")).text


async def test_festival_gifts_in_the_catalog(
    app: HaloBuzzApp, client: httpx.AsyncClient, browser_for: Any, admin: Any
) -> None:
    running = await _festival(client, admin, "Gift festival")
    panel = await browser_for(admin, pyotp.TOTP(TOTP_SECRET).now())
    page = await panel.get("/admin/catalog")
    assert f'<option value="{running["id"]}">Gift festival</option>' in page.text
    made = await panel.post(
        "/admin/catalog/gifts",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "Lantern",
            "coin_price": "7",
            "rarity": "rare",
            "festival_id": running["id"],
        },
    )
    assert made.status_code == 303
    gifts = (await client.get(f"{API}/admin/gifts", headers=admin.headers)).json()["items"]
    lantern = next(g for g in gifts if g["name"] == "Lantern")
    assert lantern["festival_id"] == running["id"]
    page = await panel.get("/admin/catalog")
    assert f'<option value="{running["id"]}" selected>Gift festival</option>' in page.text
    # Saving the gift with no festival makes it an ordinary gift.
    cleared = await panel.post(
        f"/admin/catalog/gifts/{lantern['id']}",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "Lantern",
            "coin_price": "7",
            "rarity": "rare",
            "is_active": "1",
        },
    )
    assert cleared.status_code == 303
    gifts = (await client.get(f"{API}/admin/gifts", headers=admin.headers)).json()["items"]
    assert next(g for g in gifts if g["name"] == "Lantern")["festival_id"] is None
    # An id that is no festival: the API's error is shown.
    wrong = await panel.post(
        "/admin/catalog/gifts",
        data={"csrf_token": csrf_of(page.text), "name": "Ghost", "coin_price": "7", "festival_id": str(uuid.uuid4())},
    )
    assert 400 <= wrong.status_code < 500 and alert_of(wrong.text)
