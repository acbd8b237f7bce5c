"""The economy pages in a real browser (Playwright driving Debian's chromium, headless, against a
real uvicorn server): gifts sent through the API move a stream's throne and the open page shows
each new holder live from ``throne_changed``, without a reload; a fan then joins an OG tier on
/og and claims the daily bonus on the wallet."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from halobuzz.app import HaloBuzzApp
from tests.economy.conftest import grant_coins
from tests.realtime.support import Live
from tests.realtime.support import live as live
from tests.web.test_browser import Problems, shot, sign_in
from tests.web.test_browser import browser as browser


async def _gift(server: Live, sender: Any, stream_id: str, gift_id: str, quantity: int = 1) -> None:
    sent = await server.http.post(
        f"/api/v1/streams/{stream_id}/gifts",
        json={"gift_id": gift_id, "quantity": quantity},
        headers={**sender.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert sent.status_code in (200, 201), sent.text


async def _holder_is(page: Any, name: str, coins: str) -> None:
    await page.wait_for_function(
        """([name, coins]) => {
          const a = document.getElementById('throne-holder'), c = document.getElementById('throne-coins');
          return !a.hidden && a.textContent === name && c.textContent === coins
            && document.getElementById('throne-empty').hidden;
        }""",
        arg=[name, coins],
    )


@pytest.mark.timeout(180)
async def test_throne_changes_arrive_live_on_an_open_stream_page(
    app: HaloBuzzApp, make_user: Callable[..., Any], live: Callable[..., Any], browser: Any
) -> None:
    server: Live = await live()
    url = server.url
    owner = await make_user("thronelivehost", roles=["creator"])
    first = await make_user("thronefirst", display_name="First Fan")
    second = await make_user("thronesecond", display_name="Second Fan")
    created = await server.http.post("/api/v1/streams", json={"title": "Throne live"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    started = await server.http.post(f"/api/v1/streams/{sid}/start", headers=owner.headers)
    assert started.status_code == 200, started.text
    gifts = (await server.http.get("/api/v1/gifts")).json()["items"]
    gift = min(gifts, key=lambda g: g["coin_price"])
    price = int(gift["coin_price"])
    await grant_coins(app, first.id, price * 2)
    await grant_coins(app, second.id, price * 3)

    problems = Problems()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = problems.watch(await context.new_page())
    await page.goto(f"{url}/streams/{sid}")
    await page.wait_for_selector("#stream[data-chat-ready='true']")
    assert await page.is_visible("#throne-empty") and await page.is_hidden("#throne-holder")

    await _gift(server, first, sid, gift["id"], quantity=2)
    await _holder_is(page, "First Fan", f"{price * 2} coins")
    assert await page.get_attribute("#throne-holder", "href") == "/users/thronefirst"
    assert await page.get_attribute("#throne", "data-holder") == str(first.id)

    # Overtaken: the second fan's larger total takes the throne, still without a reload.
    await _gift(server, second, sid, gift["id"], quantity=3)
    await _holder_is(page, "Second Fan", f"{price * 3} coins")
    assert await page.get_attribute("#throne-holder", "href") == "/users/thronesecond"
    await shot(page, "stream-throne")

    # The second fan signs in, joins an OG tier and claims the day's bonus (tier bonus included).
    admin = await make_user("thronelivead", roles=["admin"])
    tier = {"level": 1, "name": "Browser OG", "monthly_price": 1, "daily_bonus": 4}
    made = await server.http.post("/api/v1/admin/og/tiers", json=tier, headers=admin.headers)
    assert made.status_code == 201, made.text
    await grant_coins(app, second.id, 1)  # the gifts spent the rest
    await sign_in(page, url, second.username, second.password)
    await page.goto(f"{url}/og")
    await page.click("#og-tier-1 button[type=submit]")
    await page.wait_for_url(f"{url}/og?notice=og_subscribed")
    assert await page.inner_text("#og-current") == "Browser OG"
    await shot(page, "og")
    await page.goto(f"{url}/wallet")
    assert await page.inner_text("#bonus-worth") == "Today's bonus: 14 coins (4 coins from your OG tier)"
    await page.click("#bonus-claim")
    await page.wait_for_url(f"{url}/wallet?notice=bonus_claimed")
    assert await page.is_visible("#bonus-next") and await page.inner_text("#balance") == "14"
    await shot(page, "wallet-bonus")
    await context.close()
    assert problems.items == [], "\n".join(problems.items)
