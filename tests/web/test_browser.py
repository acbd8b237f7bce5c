"""The web app in a real browser: Playwright driving Debian's chromium (headless) against a real
uvicorn server. Every page is checked for console errors and failed requests; screenshots of the
main pages go to var/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from halobuzz.app import HaloBuzzApp
from tests.realtime.support import Live
from tests.realtime.support import live as live

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "correct horse battery 9"
TIMEOUT_MS = 20_000


class Problems:
    """Console errors and failed requests seen by every page of a browser context."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def watch(self, page: Any) -> Any:
        page.on("console", lambda m: self.items.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.items.append(f"page error: {e}"))
        page.on("requestfailed", self._request_failed)
        page.on("response", lambda r: self.items.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        page.set_default_timeout(TIMEOUT_MS)
        return page

    def _request_failed(self, request: Any) -> None:
        # ERR_ABORTED is the browser cancelling a request because the page navigated on (a favicon
        # still loading when a form submits), not a request that failed.
        if request.failure != "net::ERR_ABORTED":
            self.items.append(f"request failed: {request.url} {request.failure}")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    assert CHROMIUM.exists(), "the browser tests drive Debian's chromium: run scripts/system-deps.sh"

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            yield instance
        finally:
            await instance.close()


async def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Any, url: str, login: str, password: str) -> None:
    await page.goto(f"{url}/login")
    await page.fill("#login", login)
    await page.fill("#password", password)
    await page.click("form.stack button[type=submit]")
    await page.wait_for_url(f"{url}/")


async def test_viewer_creator_and_admin_journeys(
    app: HaloBuzzApp,
    make_user: Callable[..., Any],
    live: Callable[..., Any],
    browser: Any,
) -> None:
    server: Live = await live()
    url = server.url
    problems = Problems()
    creator = await make_user("studiohost", roles=["creator"])
    admin = await make_user("paneladmin", roles=["admin"])
    chatter = await make_user("secondviewer")
    async with httpx.AsyncClient(base_url=url) as api:
        created = await api.post("/api/v1/streams", json={"title": "Test pattern live"}, headers=creator.headers)
        assert created.status_code == 201, created.text
        stream_id = created.json()["id"]
        started = await api.post(f"/api/v1/streams/{stream_id}/start", headers=creator.headers)
        assert started.status_code == 200, started.text

    # A new viewer signs up and buys coins with the sandbox checkout.
    viewer_ctx = await browser.new_context(viewport={"width": 390, "height": 844})
    viewer = problems.watch(await viewer_ctx.new_page())
    await viewer.goto(url + "/")
    await shot(viewer, "home-phone")
    await viewer.click("a[href='/signup']")
    await viewer.fill("#username", "newviewer")
    await viewer.fill("#email", "newviewer@example.com")
    await viewer.fill("#password", PASSWORD)
    await viewer.click("form.stack button[type=submit]")
    await viewer.wait_for_url(url + "/")
    await viewer.goto(url + "/wallet")
    await viewer.click("button[data-package='Starter']")
    await viewer.wait_for_selector("p.notice")
    assert int(await viewer.inner_text("#balance")) >= 500
    await shot(viewer, "wallet")

    # Both viewers open the live stream; a message from one reaches the other.
    other_ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    other = problems.watch(await other_ctx.new_page())
    await sign_in(other, url, chatter.username, chatter.password)
    await other.goto(f"{url}/streams/{stream_id}")
    await viewer.goto(f"{url}/streams/{stream_id}")
    await other.wait_for_selector("#stream[data-chat-ready='true']")
    await viewer.wait_for_selector("#stream[data-chat-ready='true']")
    await viewer.fill("#chat-input", "namaste from the browser")
    await viewer.press("#chat-input", "Enter")
    await other.wait_for_selector("#messages li:has-text('namaste from the browser')")

    # A gift: the animation plays for viewers and the creator's studio shows the sender.
    await viewer.click("button[data-gift='Rose']")
    await other.wait_for_selector("#gift-stage img.gift-pop", state="attached")
    await shot(other, "stream-desktop")
    creator_ctx = await browser.new_context()
    studio = problems.watch(await creator_ctx.new_page())
    await sign_in(studio, url, creator.username, creator.password)
    await studio.goto(f"{url}/studio/streams/{stream_id}")
    await studio.wait_for_selector("#leaderboard li:has-text('newviewer')")

    # The creator rotates the stream key.
    await studio.click("#rotate-key")
    first = await studio.inner_text("#stream-key")
    await studio.click("#rotate-key")
    await studio.wait_for_function("k => document.querySelector('#stream-key').textContent !== k", arg=first)
    await shot(studio, "studio")

    # An admin bans the new viewer; the viewer's page session ends.
    admin_ctx = await browser.new_context()
    panel = problems.watch(await admin_ctx.new_page())
    await sign_in(panel, url, admin.username, admin.password)
    await panel.goto(f"{url}/admin?q=newviewer")
    row = panel.locator("tr[data-username='newviewer']")
    await row.locator("input[name=reason]").fill("spam")
    await row.locator("button[type=submit]").click()
    await panel.wait_for_selector("p.notice")
    await shot(panel, "admin")
    await viewer.goto(url + "/wallet")
    await viewer.wait_for_url(re.compile(r".*/login\?next=/wallet$"))
    await shot(viewer, "login-after-ban")

    for context in (viewer_ctx, other_ctx, creator_ctx, admin_ctx):
        await context.close()
    assert problems.items == []
