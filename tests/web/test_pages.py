"""The web app over HTTP: cookie sign-in, CSRF, pages, forms and the API's error messages."""

from __future__ import annotations

import re
from typing import Any

import httpx

from halobuzz.app import HaloBuzzApp
from tests.conftest import client_for

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery 9"


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:500]
    return match.group(1)


async def sign_up(c: httpx.AsyncClient, username: str) -> None:
    page = await c.get("/signup")
    response = await c.post(
        "/signup",
        data={
            "csrf_token": csrf_of(page.text),
            "username": username,
            "email": f"{username}@example.com",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303, response.text
    assert "hb_session" in response.headers.get("set-cookie", "")


async def sign_in(c: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    page = await c.get("/login")
    return await c.post("/login", data={"csrf_token": csrf_of(page.text), "login": login, "password": password})


async def test_home_page_renders_with_csp_and_no_inline_script(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text) is None
    assert "hb_csrf" in response.headers.get("set-cookie", "")
    assert "HttpOnly" in response.headers["set-cookie"]
    # The API keeps its own policy.
    api = await client.get("/api/v1/categories")
    assert api.headers["content-security-policy"].startswith("default-src 'none'")


async def test_languages_and_rtl(client: httpx.AsyncClient) -> None:
    urdu = await client.get("/?lang=ur")
    assert 'lang="ur" dir="rtl"' in urdu.text
    remembered = await client.get("/")
    assert 'dir="rtl"' in remembered.text
    async with client_for(client._transport.app) as fresh:  # type: ignore[attr-defined]
        nepali = await fresh.get("/", headers={"accept-language": "ne-NP,ne;q=0.9,en;q=0.5"})
        assert 'lang="ne" dir="ltr"' in nepali.text
        assert "अहिले लाइभ" in nepali.text


async def test_signup_shows_api_errors_and_requires_csrf(client: httpx.AsyncClient) -> None:
    page = await client.get("/signup")
    bad = await client.post(
        "/signup", data={"csrf_token": csrf_of(page.text), "username": "ab", "email": "nope", "password": "short"}
    )
    assert bad.status_code == 422
    assert 'role="alert"' in bad.text
    forged = await client.post(
        "/signup", data={"csrf_token": "x", "username": "abc", "email": "a@b.c", "password": "p"}
    )
    assert forged.status_code == 403


async def test_signup_buy_coins_wallet_and_logout(client: httpx.AsyncClient) -> None:
    await sign_up(client, "webviewer")
    wallet = await client.get("/wallet")
    assert wallet.status_code == 200
    package = re.search(r'name="package_id" value="([^"]+)"', wallet.text)
    assert package, "the default coin packages are listed"
    bought = await client.post(
        "/wallet/buy",
        data={
            "csrf_token": csrf_of(wallet.text),
            "package_id": package.group(1),
            "provider": "sandbox",
            "currency": "NPR",
        },
    )
    assert bought.status_code == 303 and "notice=bought" in bought.headers["location"], bought.headers
    after = await client.get("/wallet?notice=bought")
    assert re.search(r'id="balance">(\d+)<', after.text).group(1) != "0"  # type: ignore[union-attr]
    logout = await client.post("/logout", data={"csrf_token": csrf_of(after.text)})
    assert logout.status_code == 303
    assert (await client.get("/wallet")).status_code == 303


async def test_web_token_needs_csrf_header_and_session(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    token = csrf_of(page.text) if CSRF.search(page.text) else None
    assert (await client.post("/web/token")).status_code == 403
    await sign_up(client, "tokenuser")
    home = await client.get("/")
    meta = re.search(r'name="csrf-token" content="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
    issued = await client.post("/web/token", headers={"x-csrf-token": meta})
    assert issued.status_code == 200
    me = await client.get("/api/v1/users/me", headers={"authorization": f"Bearer {issued.json()['access_token']}"})
    assert me.json()["username"] == "tokenuser"
    del token


async def test_creator_creates_stream_and_rotates_key(app: HaloBuzzApp, make_user: Any) -> None:
    creator = await make_user("webcreator", roles=["creator"])
    async with client_for(app) as c:
        assert (await sign_in(c, creator.username, creator.password)).status_code == 303
        studio = await c.get("/studio")
        assert studio.status_code == 200
        created = await c.post("/studio/streams", data={"csrf_token": csrf_of(studio.text), "title": "Evening radio"})
        assert created.status_code == 200
        first = re.search(r'id="stream-key">([^<]+)<', created.text).group(1)  # type: ignore[union-attr]
        stream_id = re.search(r'action="/studio/streams/([0-9a-f-]+)/rotate"', created.text).group(1)  # type: ignore[union-attr]
        rotated = await c.post(f"/studio/streams/{stream_id}/rotate", data={"csrf_token": csrf_of(created.text)})
        second = re.search(r'id="stream-key">([^<]+)<', rotated.text).group(1)  # type: ignore[union-attr]
        assert second != first
        viewer_page = await c.get(f"/streams/{stream_id}")
        assert viewer_page.status_code == 200 and "Evening radio" in viewer_page.text


async def test_admin_bans_user_and_their_page_session_ends(app: HaloBuzzApp, make_user: Any) -> None:
    admin = await make_user("webadmin", roles=["admin"])
    async with client_for(app) as victim, client_for(app) as staff:
        await sign_up(victim, "webvictim")
        assert (await victim.get("/wallet")).status_code == 200
        assert (await sign_in(staff, admin.username, admin.password)).status_code == 303
        panel = await staff.get("/admin?q=webvictim")
        assert panel.status_code == 200 and "webvictim" in panel.text
        user_id = re.search(r'action="/admin/users/([0-9a-f-]+)/ban"', panel.text).group(1)  # type: ignore[union-attr]
        banned = await staff.post(
            f"/admin/users/{user_id}/ban", data={"csrf_token": csrf_of(panel.text), "reason": "spam"}
        )
        assert banned.status_code == 303 and "notice=done" in banned.headers["location"], banned.headers
        gone = await victim.get("/wallet")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")


async def test_gift_assets_are_served(client: httpx.AsyncClient) -> None:
    gifts = (await client.get("/api/v1/gifts")).json()["items"]
    for gift in gifts:
        described = await client.get(gift["animation_url"])
        assert described.status_code == 200, gift
        svg = await client.get(described.json()["src"])
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")


async def test_home_page_javascript_budget(client: httpx.AsyncClient) -> None:
    """At most 200 KB of JavaScript (gzip) on the home page, all from our own origin, no inline code."""
    import gzip

    home = await client.get("/")
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', home.text)
    assert sources and all(src.startswith("/static/") for src in sources)
    total = 0
    for src in sources:
        script = await client.get(src)
        assert script.status_code == 200, src
        total += len(gzip.compress(script.content))
    assert total <= 200 * 1024, total


async def test_account_avatar_and_two_factor(client: httpx.AsyncClient) -> None:
    import io

    import pyotp
    from PIL import Image

    await sign_up(client, "accountuser")
    account = await client.get("/account")
    assert account.status_code == 200
    image = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 90)).save(image, format="PNG")
    uploaded = await client.post(
        "/account/avatar",
        data={"csrf_token": csrf_of(account.text)},
        files={"file": ("me.png", image.getvalue(), "image/png")},
    )
    assert uploaded.status_code == 303 and "notice=saved" in uploaded.headers["location"], uploaded.headers
    wrong = await client.post(
        "/account/avatar",
        data={"csrf_token": csrf_of(account.text)},
        files={"file": ("me.txt", b"not an image", "text/plain")},
    )
    assert "error=" in wrong.headers["location"]

    setup = await client.post("/account/2fa/setup", data={"csrf_token": csrf_of(account.text)})
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', setup.text).group(1)  # type: ignore[union-attr]
    bad = await client.post("/account/2fa/confirm", data={"csrf_token": csrf_of(setup.text), "otp": "000000"})
    assert bad.status_code in (400, 401, 403, 422) and 'role="alert"' in bad.text, bad.text[-1500:]
    done = await client.post(
        "/account/2fa/confirm", data={"csrf_token": csrf_of(setup.text), "otp": pyotp.TOTP(secret).now()}
    )
    assert 'id="recovery-codes"' in done.text
    assert ">ON<" in (await client.get("/account")).text
