"""The web app in a real browser: Playwright driving Debian's chromium (headless) against a real
uvicorn server, with a stream published by ffmpeg (a generated test pattern) through nginx-rtmp
into the media plane. Every page is checked for console errors and failed requests; screenshots
of the main pages go to var/screenshots/.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest

from halobuzz.app import HaloBuzzApp
from tests.media.conftest import free_port, needs_media, nginx_rtmp, publisher
from tests.realtime.support import Live
from tests.realtime.support import live as live
from tests.web.conftest import PASSWORD, TOTP_SECRET
from tests.web.world import build_world, pages

__all__ = ["needs_media", "nginx_rtmp", "publisher"]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
TIMEOUT_MS = 30_000
MEDIA_TIMEOUT_MS = 90_000


class Problems:
    """Console errors and failed requests seen by every page of the browser contexts watched."""

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
        # or a playlist still loading when a form submits or the page reloads), not a failure.
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


async def sign_in(page: Any, url: str, login: str, password: str, otp: str | None = None) -> None:
    await page.goto(f"{url}/login")
    await page.fill("#login", login)
    await page.fill("#password", password)
    if otp:
        await page.fill("#otp", otp)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(f"{url}/")


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def playing(page: Any, selector: str = "#media") -> None:
    """The media element's current time advances: the video really plays."""
    start = await page.wait_for_function(
        f"() => {{ const m = document.querySelector('{selector}'); return m && m.currentTime > 0.5 && m.currentTime; }}",
        timeout=MEDIA_TIMEOUT_MS,
    )
    first = await start.json_value()
    await page.wait_for_function(
        f"t => document.querySelector('{selector}').currentTime > t + 1", arg=first, timeout=MEDIA_TIMEOUT_MS
    )


@pytest.mark.timeout(420)
@pytest.mark.usefixtures("needs_media")
async def test_viewer_creator_and_admin_journeys(
    app: HaloBuzzApp,
    make_user: Callable[..., Any],
    live: Callable[..., Any],
    nginx_rtmp: Any,
    publisher: Any,
    browser: Any,
    tmp_path: Path,
) -> None:
    port = free_port()
    server: Live = await live(
        media={"enabled": True, "rtmp_port": port, "segment_seconds": 1, "grace_seconds": 0,
               "ladder": "180p:200k,120p:120k", "x264_preset": "ultrafast", "thumbnail_seconds": 1,
               "hls_dir": tmp_path / "hls"},
    )  # fmt: skip
    await nginx_rtmp(server.app.runtime.settings, port, server.url)
    url = server.url
    problems = Problems()
    creator = await make_user("studiohost", roles=["creator"])
    admin = await make_user("paneladmin", roles=["admin"], totp_secret=TOTP_SECRET, totp_enabled_at=_now())
    chatter = await make_user("secondviewer")
    http = server.http
    created = await http.post("/api/v1/streams", json={"title": "Test pattern live"}, headers=creator.headers)
    assert created.status_code == 201, created.text
    stream_id, key = created.json()["id"], created.json()["stream_key"]

    # The creator publishes a generated test pattern over RTMP: the stream goes live by itself.
    pub = await publisher(f"rtmp://127.0.0.1:{port}/live/{key}")

    async def is_live() -> bool:
        return (await http.get(f"/api/v1/streams/{stream_id}")).json()["status"] == "live"

    await until(is_live, "the published stream goes live")

    # A new viewer signs up and buys coins with the sandbox checkout.
    viewer_ctx = await browser.new_context(viewport={"width": 390, "height": 844})
    viewer = problems.watch(await viewer_ctx.new_page())
    await viewer.goto(url + "/")
    await shot(viewer, "home-phone")
    await viewer.click("a[href='/signup']")
    await viewer.fill("#username", "newviewer")
    await viewer.fill("#email", "newviewer@example.com")
    await viewer.fill("#password", PASSWORD)
    await viewer.click("#signup-form button[type=submit]")
    await viewer.wait_for_url(url + "/?notice=welcome")
    await viewer.goto(url + "/wallet")
    await viewer.click("button[data-package='Starter']")
    await viewer.wait_for_selector("#checkout")
    await shot(viewer, "checkout")
    await viewer.click("#pay")
    await viewer.wait_for_selector("p.notice")
    assert int(await viewer.inner_text("#balance")) >= 500
    assert await viewer.locator("#history tbody tr").count() == 1
    await shot(viewer, "wallet")

    # The viewer finds the stream with the title search and watches it play.
    await viewer.goto(url + "/")
    await viewer.fill("#f-q", "pattern")
    await viewer.click("form.filters button[type=submit]")
    await viewer.click(f"#live-list a[href='/streams/{stream_id}']")
    await viewer.wait_for_selector("#stream[data-chat-ready='true']")
    await playing(viewer)
    await viewer.wait_for_selector("#quality-wrap:not([hidden])")
    levels = await viewer.locator("#quality option").all_inner_texts()
    assert {"240p", "180p", "120p"} <= set(levels), levels
    await viewer.select_option("#quality", label="120p")

    # A second viewer in another browser context sees the first one's message.
    other_ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    other = problems.watch(await other_ctx.new_page())
    await sign_in(other, url, chatter.username, chatter.password)
    await other.goto(f"{url}/streams/{stream_id}")
    await other.wait_for_selector("#stream[data-chat-ready='true']")
    await viewer.fill("#chat-input", "namaste from the browser")
    await viewer.press("#chat-input", "Enter")
    await other.wait_for_selector("#messages li:has-text('namaste from the browser')")

    # The second viewer's connection drops; what was said meanwhile arrives on reconnection.
    await other.evaluate("() => window.HaloBuzz.socket.disconnect()")
    await other.wait_for_selector("#stream[data-chat-ready='false']")
    await viewer.fill("#chat-input", "said while you were away")
    await viewer.press("#chat-input", "Enter")
    await viewer.wait_for_selector("#messages li:has-text('said while you were away')")
    await other.evaluate("() => window.HaloBuzz.socket.connect()")
    await other.wait_for_selector("#stream[data-chat-ready='true'][data-recovered='true']")
    await other.wait_for_selector("#messages li:has-text('said while you were away')")

    # A gift: the animation plays for viewers; the creator's studio shows the sender.
    await viewer.click("button[data-gift='Rose']")
    await other.wait_for_selector("#messages li.system:has-text('newviewer')")
    await shot(other, "stream-desktop")
    creator_ctx = await browser.new_context()
    studio = problems.watch(await creator_ctx.new_page())
    await sign_in(studio, url, creator.username, creator.password)
    await studio.goto(f"{url}/studio/streams/{stream_id}")
    await studio.wait_for_selector("#leaderboard li:has-text('newviewer')")
    await studio.wait_for_selector("#studio[data-chat-ready='true']")
    await viewer.click("button[data-gift='Rose']")
    await studio.wait_for_selector("#gift-feed li[data-sender='newviewer']")
    assert "yes" in await studio.inner_text("#health dd[data-k='transcoding']")
    await shot(studio, "studio-stream")

    # The second viewer reports the new viewer's message.
    await other.click("#messages li:has-text('namaste from the browser') a.report")
    await other.select_option("#reason", "spam")
    await other.fill("#details", "keeps advertising")
    await other.click("#report-form button[type=submit]")
    await other.wait_for_url(re.compile(r".*/streams/.*notice=reported"))

    # An admin (two-factor on) bans the new viewer from the moderation queue; the viewer is signed out.
    admin_ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    panel = problems.watch(await admin_ctx.new_page())
    await sign_in(panel, url, admin.username, admin.password, pyotp.TOTP(TOTP_SECRET).now())
    await panel.goto(url + "/admin")
    await panel.wait_for_selector("#chart-status svg")
    await shot(panel, "admin-overview")
    await panel.goto(url + "/admin/moderation")
    await panel.click("#queue tbody tr a")
    await panel.wait_for_selector(".messages.context li.target:has-text('namaste from the browser')")
    await panel.check("input[name=decision][value=ban]")
    await panel.fill("#d-reason", "spam in chat")
    await shot(panel, "admin-case")
    await panel.click("#decide")
    await panel.wait_for_selector("p.notice")
    await shot(panel, "admin-moderation")
    # The viewer's open stream page learns it over the socket and shows the signed-out page.
    await viewer.wait_for_selector("header a[href='/login']")
    await viewer.goto(url + "/wallet")
    await viewer.wait_for_url(re.compile(r".*/login\?next=%2Fwallet$"))
    await shot(viewer, "login-after-ban")

    # The creator rotates the stream key (revealed once, different each time): the encoder still
    # publishing with the old key is dropped, so the broadcast ends; its recording plays as a past
    # broadcast.
    await studio.click("#rotate-key")
    first = await studio.inner_text("#stream-key")
    await studio.click("#rotate-key")
    await studio.wait_for_function("k => document.querySelector('#stream-key').textContent !== k", arg=first)
    await asyncio.wait_for(pub.wait(), 60)

    async def recorded() -> bool:
        return bool((await http.get(f"/api/v1/streams/{stream_id}/recordings")).json()["items"])

    await until(recorded, "the recording is stored")
    await other.goto(f"{url}/streams/{stream_id}")
    await other.click(".vods a")
    await other.wait_for_selector("#vod")
    await other.evaluate("() => document.getElementById('media').play()")
    await playing(other)
    await shot(other, "vod")

    for context in (viewer_ctx, other_ctx, creator_ctx, admin_ctx):
        await context.close()
    assert problems.items == [], "\n".join(problems.items)


@pytest.mark.timeout(300)
async def test_every_page_in_the_browser(
    app: HaloBuzzApp, make_user: Any, make_admin: Any, live: Callable[..., Any], browser: Any
) -> None:
    """Each page as its people see it: no console error, no failed request, keyboard focus visible."""
    world = await build_world(app, make_user, make_admin)
    server: Live = await live()
    url = server.url
    problems = Problems()
    contexts: dict[str, Any] = {}
    tabs: dict[str, Any] = {}
    for who in ("anonymous", "viewer", "troll", "creator", "moderator", "admin"):
        contexts[who] = await browser.new_context(viewport={"width": 1280, "height": 900})
        tabs[who] = problems.watch(await contexts[who].new_page())
    await sign_in(tabs["viewer"], url, world.viewer.username, world.viewer.password)
    await sign_in(tabs["troll"], url, world.troll.username, world.troll.password)
    await sign_in(tabs["creator"], url, world.creator.username, world.creator.password)
    await sign_in(tabs["moderator"], url, world.moderator.username, world.moderator.password)
    await sign_in(tabs["admin"], url, world.admin.username, world.admin.password, pyotp.TOTP(TOTP_SECRET).now())
    shots = {
        ("viewer", "/account"): "account",
        ("creator", "/studio"): "studio",
        ("creator", "/studio/earnings"): "studio-earnings",
        ("admin", "/admin/users?q=world"): "admin-users",
        ("admin", "/admin/payments"): "admin-payments",
        ("admin", "/admin/catalog"): "admin-catalog",
        ("admin", "/admin/jobs"): "admin-jobs",
        ("anonymous", "/"): "home-desktop",
    }
    for who, path in pages(world):
        if "/recordings/" in path:
            continue  # the world's recording has no files; the journey test plays a real one
        tab = tabs[who]
        await tab.goto(url + path, wait_until="load")
        await tab.wait_for_load_state("networkidle")
        assert await tab.title(), path
        # Keyboard: the first Tab lands on the skip link, which is visible when focused.
        await tab.keyboard.press("Tab")
        focused = await tab.evaluate("() => document.activeElement && document.activeElement.className")
        assert focused == "skip", (who, path, focused)
        if (who, path) in shots:
            await shot(tab, shots[(who, path)])
    # The admin overview's live chart draws once it has two samples.
    await tabs["admin"].goto(url + "/admin")
    await tabs["admin"].wait_for_selector("#live-chart[data-samples='2']", timeout=20_000)
    for context in contexts.values():
        await context.close()
    assert problems.items == [], "\n".join(problems.items)


def _now() -> Any:
    from halobuzz.core.clock import utcnow

    return utcnow()


@pytest.mark.timeout(180)
async def test_bell_counts_live_and_push_can_be_offered(
    app: HaloBuzzApp, make_user: Any, live: Callable[..., Any], browser: Any
) -> None:
    """The header's bell follows the user's socket room; the notifications page offers to show
    what arrived; marking all read empties the bell; the push button is offered once the service
    worker is registered."""
    from tests.events.conftest import jobs_settings

    server: Live = await live(jobs=jobs_settings())
    url = server.url
    viewer = await make_user("bellviewer")
    fans = [await make_user(f"bellfan{n}") for n in range(2)]
    problems = Problems()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = problems.watch(await context.new_page())
    await sign_in(page, url, viewer.username, viewer.password)
    # The bell reads the count again once its socket is connected.
    async with page.expect_response(lambda r: r.url.endswith("/api/v1/notifications/unread-count")):
        await page.goto(url + "/")
    assert await page.is_hidden("#bell-count")

    followed = await server.http.post(f"/api/v1/users/{viewer.username}/follow", headers=fans[0].headers)
    assert followed.status_code in (200, 201, 204), followed.text
    await page.wait_for_function(
        "() => { const c = document.getElementById('bell-count'); return !c.hidden && c.textContent === '1'; }"
    )
    assert await page.get_attribute("#bell", "aria-label") == "1 unread notification"
    assert await page.inner_text("#bell-live") == "New notification"

    async with page.expect_response(lambda r: r.url.endswith("/api/v1/notifications/unread-count")):
        await page.click("#bell")
    assert "bellfan0 followed you" in await page.inner_text("#notifications")
    assert await page.is_hidden("#notif-new")
    second = await server.http.post(f"/api/v1/users/{viewer.username}/follow", headers=fans[1].headers)
    assert second.status_code in (200, 201, 204), second.text
    await page.wait_for_selector("#notif-new", state="visible")
    assert await page.inner_text("#bell-count") == "2"
    await page.click("#notif-new a")
    assert "bellfan1 followed you" in await page.inner_text("#notifications")
    await shot(page, "notifications")
    await page.click("#read-all")
    await page.wait_for_url(re.compile(r".*notice=all_read"))
    assert await page.is_hidden("#bell-count") and await page.get_attribute("#bell", "aria-label") == (
        "0 unread notifications"
    )

    await context.grant_permissions(["notifications"], origin=url)
    await page.goto(url + "/notifications/preferences")
    await page.wait_for_selector("#push-toggle", state="visible")
    assert await page.inner_text("#push-state") == "Push notifications are off in this browser."
    scope = await page.evaluate("() => navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == url + "/"
    await shot(page, "notification-preferences")
    await context.close()
    assert problems.items == [], "\n".join(problems.items)


@pytest.mark.timeout(240)
@pytest.mark.usefixtures("needs_media")
async def test_radio_channel_plays_in_the_browser(
    app: HaloBuzzApp, make_user: Callable[..., Any], live: Callable[..., Any], browser: Any, tmp_path: Path
) -> None:
    """A radio channel with one uploaded track (lavfi sine): its page attaches hls.js to the audio
    element, plays, and shows what is playing and one listener; the listener URL (70 s here) is
    renewed before it expires and playback goes on with the new token."""
    from tests.web.test_radio import sine

    server: Live = await live(
        media={"enabled": True, "rtmp_port": free_port(), "segment_seconds": 1, "audio_ladder": "64k,128k",
               "hls_dir": tmp_path / "hls", "radio_playout": True, "radio_poll_seconds": 0.5,
               "radio_list_size": 4, "playback_ttl_seconds": 70},
    )  # fmt: skip
    http = server.http
    owner = await make_user("radiobrowser", roles=["creator"])
    made = await http.post(
        "/api/v1/radio/channels", json={"name": "Awaz Pulse", "timezone": "Asia/Karachi"}, headers=owner.headers
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    track = await http.post(
        f"/api/v1/radio/channels/{cid}/tracks", files={"file": ("raga.mp3", await sine(tmp_path, "raga", 4, 330))},
        data={"title": "Evening raga"}, headers=owner.headers,
    )  # fmt: skip
    assert track.status_code == 201, track.text

    listener = await make_user("radiolistener")
    problems = Problems()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = problems.watch(await context.new_page())
    # Signed in, the listener is one person on every token (an anonymous one gets a new id per URL).
    await sign_in(page, server.url, listener.username, listener.password)
    tokens: set[str] = set()  # listener tokens in the playlist and segment requests
    page.on("request", lambda r: tokens.add(r.url.split("/")[8]) if "/api/v1/media/radio/" in r.url else None)
    await page.goto(server.url + "/radio")
    await page.click(f"#radio-list a[href='/radio/{cid}']")
    await page.wait_for_selector("#radio")
    await page.wait_for_selector("#now-playing:has-text('Now playing: Evening raga')", timeout=MEDIA_TIMEOUT_MS)
    # hls.js is attached (a MediaSource blob as the element's source) and the audio plays.
    await page.wait_for_function(
        "() => (document.getElementById('media').src || '').startsWith('blob:')", timeout=MEDIA_TIMEOUT_MS
    )
    await playing(page)
    await page.wait_for_selector("#listener-count:has-text('1 listening')", timeout=MEDIA_TIMEOUT_MS)
    await shot(page, "radio-channel")

    async def renewed() -> bool:
        return len(tokens) >= 2

    await until(renewed, "requests with a renewed listener token")
    await playing(page)  # still playing after the switch (an expired token would get 403)
    assert await page.inner_text("#listener-count") == "1 listening"
    await context.close()
    assert problems.items == [], "\n".join(problems.items)
