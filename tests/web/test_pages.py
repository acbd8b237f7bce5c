"""The web app over HTTP for viewers: cookie sign-in, CSRF, the live listing, stream pages, gifts,
follows, reports, the wallet and its checkouts, the account, email verification and password reset.
Every form shows the API's own error message with its status when the API refuses it."""

from __future__ import annotations

import asyncio
import email
import gzip
import io
import re
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import httpx
import pyotp
from PIL import Image

from halobuzz.app import HaloBuzzApp
from halobuzz.media.models import Recording
from tests.conftest import client_for
from tests.economy.conftest import grant_coins
from tests.web.conftest import CSRF, PASSWORD, alert_of, csrf_of, sign_in, sign_up, submit

API = "/api/v1"


async def _live_stream(c: httpx.AsyncClient, owner: Any, **fields: Any) -> str:
    r = await c.post(f"{API}/streams", json={"title": "A stream", **fields}, headers=owner.headers)
    assert r.status_code == 201, r.text
    sid = str(r.json()["id"])
    assert (await c.post(f"{API}/streams/{sid}/start", headers=owner.headers)).status_code == 200
    return sid


async def test_home_page_renders_with_csp_and_no_inline_script(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "form-action 'self'" in csp
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text) is None
    assert re.search(r"\sstyle=", response.text) is None and "<style" not in response.text
    assert re.search(r"\son[a-z]+=", response.text) is None
    assert "hb_csrf" in response.headers.get("set-cookie", "")
    assert "HttpOnly" in response.headers["set-cookie"]
    # The API keeps its own policy.
    api = await client.get(f"{API}/categories")
    assert api.headers["content-security-policy"].startswith("default-src 'none'")


async def test_languages_and_rtl(client: httpx.AsyncClient) -> None:
    urdu = await client.get("/?lang=ur")
    assert 'lang="ur" dir="rtl"' in urdu.text and "ابھی لائیو" in urdu.text
    remembered = await client.get("/")
    assert 'dir="rtl"' in remembered.text
    async with client_for(client._transport.app) as fresh:  # type: ignore[attr-defined]
        nepali = await fresh.get("/", headers={"accept-language": "ne-NP,ne;q=0.9,en;q=0.5"})
        assert 'lang="ne" dir="ltr"' in nepali.text
        assert "अहिले लाइभ" in nepali.text


async def test_profile_language_chooses_the_pages_language(app: HaloBuzzApp, client: httpx.AsyncClient) -> None:
    await sign_up(client, "bengali")
    saved = await submit(client, "/account", "/account/profile", language="bn", display_name="Bengali")
    assert saved.status_code == 303
    page = await client.get("/", headers={"accept-language": "en"})
    assert 'lang="bn"' in page.text and "এখন লাইভ" in page.text


async def test_signup_shows_api_errors_and_requires_csrf(client: httpx.AsyncClient) -> None:
    bad = await submit(client, "/signup", "/signup", username="ab", email="nope", password="short")
    assert bad.status_code == 422
    assert "username" in alert_of(bad.text)
    assert 'value="ab"' in bad.text and "short" not in bad.text  # the password is never echoed
    forged = await client.post(
        "/signup", data={"csrf_token": "x", "username": "abc", "email": "a@b.c", "password": "p"}
    )
    assert forged.status_code == 403
    nothing = await client.post("/signup", data={"username": "abc"})
    assert nothing.status_code == 403


async def test_login_errors_two_factor_and_next(app: HaloBuzzApp, make_user: Any) -> None:
    secret = pyotp.random_base32()
    from halobuzz.core.clock import utcnow

    user = await make_user("twofactor", totp_secret=secret, totp_enabled_at=utcnow())
    async with client_for(app) as c:
        wrong = await sign_in(c, user.username, "not the password")
        assert wrong.status_code == 401 and "wrong" in alert_of(wrong.text)
        needs = await sign_in(c, user.username, user.password)
        assert needs.status_code == 401 and 'id="otp" name="otp"' in needs.text and "required" in needs.text
        page = await c.get("/login?next=/wallet")
        done = await c.post(
            "/login",
            data={
                "csrf_token": csrf_of(page.text),
                "login": user.username,
                "password": user.password,
                "otp": pyotp.TOTP(secret).now(),
                "next": "/wallet",
            },
        )
        assert done.status_code == 303 and done.headers["location"] == "/wallet"
        # An offsite next is never followed.
        page = await c.get("/login")
        assert 'name="next" value="/"' in page.text
        assert (await c.get("/login?next=//evil.example/")).text.count('name="next" value="/"') == 1


async def test_signup_buy_coins_with_the_sandbox_checkout_and_logout(client: httpx.AsyncClient) -> None:
    await sign_up(client, "webviewer")
    wallet = await client.get("/wallet")
    assert wallet.status_code == 200 and "Sandbox" in wallet.text
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
    assert bought.status_code == 303 and bought.headers["location"].startswith("/wallet/checkout/"), bought.headers
    checkout = await client.get(bought.headers["location"])
    assert checkout.status_code == 200 and 'id="pay"' in checkout.text and "NPR 10.00" in checkout.text
    paid = await client.post(bought.headers["location"], data={"csrf_token": csrf_of(checkout.text)})
    assert paid.status_code == 303 and paid.headers["location"] == "/wallet?notice=bought"
    # Paying twice charges once; the checkout of a paid intent goes back to the wallet.
    again = await client.get(bought.headers["location"])
    assert again.status_code == 303
    after = await client.get("/wallet?notice=bought")
    assert re.search(r'id="balance">(\d+)<', after.text).group(1) == "500"  # type: ignore[union-attr]
    assert "Coins bought" in after.text and "Coins added to your wallet." in after.text
    # Bad input: the API's message and status, nothing bought.
    refused = await client.post(
        "/wallet/buy",
        data={
            "csrf_token": csrf_of(after.text),
            "package_id": package.group(1),
            "provider": "sandbox",
            "currency": "XYZ",
        },
    )
    assert refused.status_code == 422 and alert_of(refused.text)
    unknown = await client.post(
        "/wallet/buy",
        data={"csrf_token": csrf_of(after.text), "package_id": "nope", "provider": "sandbox", "currency": "NPR"},
    )
    assert unknown.status_code == 422 and "package_id" in alert_of(unknown.text)
    assert (await client.get(f"/wallet/checkout/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/wallet/checkout/not-an-id")).status_code == 404
    logout = await client.post("/logout", data={"csrf_token": csrf_of(after.text)})
    assert logout.status_code == 303
    gone = await client.get("/wallet")
    assert gone.status_code == 303 and gone.headers["location"] == "/login?next=%2Fwallet"


async def test_someone_elses_checkout_is_not_found(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    buyer, other = await make_user(), await make_user()
    async with client_for(app) as c:
        package = (await c.get(f"{API}/coin-packages")).json()["items"][0]
        intent = await c.post(
            f"{API}/payments/intents",
            json={"package_id": package["id"], "provider": "sandbox", "currency": "NPR"},
            headers=buyer.headers,
        )
    web = await browser_for(other)
    assert (await web.get(f"/wallet/checkout/{intent.json()['id']}")).status_code == 404


async def test_web_token_needs_csrf_header_and_session(client: httpx.AsyncClient) -> None:
    assert (await client.post("/web/token")).status_code == 403
    page = await client.get("/")
    meta = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert (await client.post("/web/token", headers={"x-csrf-token": meta})).status_code == 401
    await sign_up(client, "tokenuser")
    home = await client.get("/")
    meta = re.search(r'name="csrf-token" content="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
    issued = await client.post("/web/token", headers={"x-csrf-token": meta})
    assert issued.status_code == 200
    me = await client.get(f"{API}/users/me", headers={"authorization": f"Bearer {issued.json()['access_token']}"})
    assert me.json()["username"] == "tokenuser"


async def test_home_filters_and_title_search(app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any) -> None:
    admin = await make_user(roles=["admin"])
    await client.post(f"{API}/categories", json={"slug": "music", "name": "Music"}, headers=admin.headers)
    owners = [await make_user(roles=["creator"]) for _ in range(3)]
    ghazal = await _live_stream(client, owners[0], title="Evening Ghazal", category="music", language="ne")
    news = await _live_stream(client, owners[1], title="Morning news", language="en")
    radio = await _live_stream(client, owners[2], title="Ghazal radio", language="hi", audio_only=True)

    async def listed(query: str) -> set[str]:
        r = await client.get("/" + query)
        assert r.status_code == 200, r.text
        return set(re.findall(r'href="/streams/([0-9a-f-]{36})"', r.text))

    assert await listed("") == {ghazal, news, radio}
    assert await listed("?q=ghazal") == {ghazal, radio}
    assert await listed("?q=GHAZAL&language=hi") == {radio}
    assert await listed("?category=music") == {ghazal}
    assert await listed("?q=nothing+like+it") == set()
    assert "No live stream matches" in (await client.get("/?q=nothing")).text
    page = await client.get("/?q=ghazal")
    assert 'value="ghazal"' in page.text and "Radio" in page.text
    bad = await client.get("/?language=english")
    assert bad.status_code == 422 and "language" in alert_of(bad.text)


async def test_stream_page_chat_history_modes_follow_and_gift_form(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, browser_for: Any
) -> None:
    owner = await make_user("pagehost", roles=["creator"])
    fan = await make_user("pagefan")
    sid = await _live_stream(client, owner, title="Chatty stream", description="Come and talk")
    await client.patch(
        f"{API}/streams/{sid}/chat/modes", json={"slow_mode_seconds": 5, "emote_only": True}, headers=owner.headers
    )
    anonymous = await client.get(f"/streams/{sid}")
    assert anonymous.status_code == 200 and "Chatty stream" in anonymous.text and "Come and talk" in anonymous.text
    assert "slow mode 5 s" in anonymous.text and "emotes only" in anonymous.text
    assert "Sign in to chat." in anonymous.text and 'class="gift-form"' not in anonymous.text
    assert 'data-playback="/streams/' in anonymous.text

    web = await browser_for(fan)
    page = await web.get(f"/streams/{sid}")
    assert 'id="chat-form"' in page.text and 'id="balance">0<' in page.text
    # Follow, then unfollow, from the stream page.
    followed = await web.post(
        "/users/pagehost/follow", data={"csrf_token": csrf_of(page.text), "next": f"/streams/{sid}"}
    )
    assert followed.status_code == 303 and followed.headers["location"] == f"/streams/{sid}"
    page = await web.get(f"/streams/{sid}")
    assert 'name="action" value="unfollow"' in page.text and "1 follower" in page.text
    await web.post("/users/pagehost/follow", data={"csrf_token": csrf_of(page.text), "action": "unfollow"})
    assert 'name="action" value="unfollow"' not in (await web.get(f"/streams/{sid}")).text

    # Gifts without scripts: the form posts; a gift the wallet cannot pay shows the API's error.
    gift = re.search(r'name="gift_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    broke = await web.post(f"/streams/{sid}/gift", data={"csrf_token": csrf_of(page.text), "gift_id": gift})
    assert broke.status_code == 409 and "not enough" in alert_of(broke.text)
    await grant_coins(app, fan.id, 100)
    sent = await web.post(f"/streams/{sid}/gift", data={"csrf_token": csrf_of(page.text), "gift_id": gift})
    assert sent.status_code == 303 and sent.headers["location"].endswith("notice=gift_sent")
    assert "Gift sent!" in (await web.get(sent.headers["location"])).text
    wallet = (await web.get(f"{API}/wallet", headers={"authorization": ""})).status_code
    assert wallet == 401  # the cookie is for pages only; the API wants a bearer token
    # A stream that does not exist, or an id that is not one.
    assert (await web.get(f"/streams/{uuid.uuid4()}")).status_code == 404
    assert (await web.get("/streams/nope")).status_code == 404


async def test_playback_json_waits_for_the_playlists(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any
) -> None:
    owner = await make_user(roles=["creator"])
    r = await client.post(f"{API}/streams", json={"title": "Soon"}, headers=owner.headers)
    sid = r.json()["id"]
    assert (await client.get(f"/streams/{sid}/playback.json")).json() == {"live": False, "url": None}
    await client.post(f"{API}/streams/{sid}/start", headers=owner.headers)
    waiting = (await client.get(f"/streams/{sid}/playback.json")).json()
    assert waiting["live"] is True and waiting["url"] is None
    # The transcoder writes the master first, then each variant after its first segment.
    out = app.runtime.settings.media.hls_dir or app.runtime.settings.data_dir / "media" / "hls"
    root = Path(out) / sid
    (root / "a").mkdir(parents=True)
    (root / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\na/index.m3u8\n")
    assert (await client.get(f"/streams/{sid}/playback.json")).json()["url"] is None
    (root / "a" / "index.m3u8").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n")
    ready = (await client.get(f"/streams/{sid}/playback.json")).json()
    assert ready["url"].startswith(f"/api/v1/media/hls/{sid}/") and ready["url"].endswith("/master.m3u8")
    assert (await client.get(ready["url"])).status_code == 200
    assert (await client.get("/streams/nope/playback.json")).status_code == 404


async def test_recording_page(app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any) -> None:
    owner = await make_user(roles=["creator"])
    sid = (await client.post(f"{API}/streams", json={"title": "Recorded"}, headers=owner.headers)).json()["id"]
    async with app.runtime.db.session() as session:
        rec = Recording(
            stream_id=uuid.UUID(sid),
            owner_id=owner.id,
            title="Last night",
            storage_prefix=f"vod/{sid}/x",
            duration_seconds=3725,
        )
        session.add(rec)
        await session.flush()
        rid = str(rec.id)
    stream = await client.get(f"/streams/{sid}")
    assert f'href="/streams/{sid}/recordings/{rid}"' in stream.text and "1:02:05" in stream.text
    page = await client.get(f"/streams/{sid}/recordings/{rid}")
    # The player gets the recording's signed VOD playlist (docs/media.md), never a bare storage path.
    assert page.status_code == 200 and f'data-hls-url="/api/v1/media/vod/{rid}/' in page.text
    assert "/master.m3u8" in page.text and f"/media/vod/{sid}/x/" not in page.text
    assert (await client.get(f"/streams/{sid}/recordings/{uuid.uuid4()}")).status_code == 404


async def test_reports_from_pages(
    app: HaloBuzzApp, client: httpx.AsyncClient, make_user: Any, browser_for: Any
) -> None:
    target = await make_user("reportme")
    reporter = await make_user("reporter")
    moderator = await make_user(roles=["moderator"])
    web = await browser_for(reporter)
    assert (await client.get("/report")).status_code == 303  # signed out: sign in first
    form = await web.get(f"/report?target_type=user&target_id={target.id}&label=reportme&next=/users/reportme")
    assert form.status_code == 200 and "reportme" in form.text
    missing = await web.post(
        "/report",
        data={
            "csrf_token": csrf_of(form.text),
            "target_type": "user",
            "target_id": str(target.id),
            "next": "/users/reportme",
        },
    )
    assert missing.status_code == 422 and "reason" in alert_of(missing.text)
    assert f'value="{target.id}"' in missing.text  # the form keeps what was chosen
    sent = await web.post(
        "/report",
        data={
            "csrf_token": csrf_of(form.text),
            "target_type": "user",
            "target_id": str(target.id),
            "reason": "spam",
            "details": "sells followers",
            "next": "/users/reportme",
        },
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/users/reportme?notice=reported"
    queue = (await client.get(f"{API}/moderation/queue", headers=moderator.headers)).json()
    assert [(c["target_type"], c["target_id"]) for c in queue] == [("user", str(target.id))]
    itself = await web.post(
        "/report",
        data={"csrf_token": csrf_of(form.text), "target_type": "user", "target_id": str(reporter.id), "reason": "spam"},
    )
    assert itself.status_code == 422 and "yourself" in alert_of(itself.text)


async def test_profile_follow_and_block(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    await make_user("profilestar", roles=["creator"], bio="I sing")
    fan = await make_user("profilefan")
    web = await browser_for(fan)
    page = await web.get("/users/profilestar")
    assert page.status_code == 200 and "I sing" in page.text and "0 followers" in page.text
    await web.post("/users/profilestar/follow", data={"csrf_token": csrf_of(page.text)})
    page = await web.get("/users/profilestar")
    assert "1 follower" in page.text
    await web.post("/users/profilestar/block", data={"csrf_token": csrf_of(page.text)})
    page = await web.get("/users/profilestar")
    assert "Unblock" in page.text and "0 followers" in page.text  # blocking ends the follow
    assert "profilestar" in (await web.get("/account")).text  # listed under blocked users
    await web.post("/users/profilestar/block", data={"csrf_token": csrf_of(page.text), "action": "unblock"})
    assert "Unblock" not in (await web.get("/users/profilestar")).text
    assert (await web.get("/users/nobody_here")).status_code == 404
    followed_self = await web.post("/users/profilefan/follow", data={"csrf_token": csrf_of(page.text)})
    assert followed_self.status_code == 422 or followed_self.status_code == 409


async def test_account_profile_password_avatar_two_factor_and_devices(
    app: HaloBuzzApp, client: httpx.AsyncClient
) -> None:
    await sign_up(client, "accountuser")
    account = await client.get("/account")
    assert account.status_code == 200
    bad_country = await client.post(
        "/account/profile", data={"csrf_token": csrf_of(account.text), "display_name": "Me", "country": "Nowhere"}
    )
    assert bad_country.status_code == 422 and "country" in alert_of(bad_country.text)
    saved = await client.post(
        "/account/profile",
        data={
            "csrf_token": csrf_of(account.text),
            "display_name": "Account User",
            "bio": "hi",
            "country": "np",
            "timezone": "Asia/Kathmandu",
        },
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/account?notice=saved"
    page = await client.get("/account")
    assert 'value="Account User"' in page.text and 'value="NP"' in page.text and "Asia/Kathmandu" in page.text

    image = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 90)).save(image, format="PNG")
    uploaded = await client.post(
        "/account/avatar",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("me.png", image.getvalue(), "image/png")},
    )
    assert uploaded.status_code == 303, uploaded.text[-800:]
    assert 'id="avatar"' in (await client.get("/account")).text
    wrong = await client.post(
        "/account/avatar",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("me.txt", b"not an image", "text/plain")},
    )
    assert wrong.status_code == 415 and alert_of(wrong.text)
    empty = await client.post("/account/avatar", data={"csrf_token": csrf_of(page.text)})
    assert empty.status_code == 422 and "Choose an image" in alert_of(empty.text)
    removed = await client.post("/account/avatar/remove", data={"csrf_token": csrf_of(page.text)})
    assert removed.status_code == 303 and 'id="avatar"' not in (await client.get("/account")).text

    bad_password = await client.post(
        "/account/password",
        data={"csrf_token": csrf_of(page.text), "current_password": "wrong one!", "new_password": "another good one 7"},
    )
    assert bad_password.status_code == 403 and "password" in alert_of(bad_password.text)
    changed = await client.post(
        "/account/password",
        data={"csrf_token": csrf_of(page.text), "current_password": PASSWORD, "new_password": "another good one 7"},
    )
    assert changed.status_code == 303 and "notice=password_changed" in changed.headers["location"]
    assert (await client.get("/account")).status_code == 200  # this device stays signed in

    setup = await client.post("/account/2fa/setup", data={"csrf_token": csrf_of(page.text)})
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', setup.text).group(1)  # type: ignore[union-attr]
    assert "otpauth://" in setup.text
    bad = await client.post(
        "/account/2fa/confirm", data={"csrf_token": csrf_of(setup.text), "otp": "000000", "secret": secret}
    )
    assert bad.status_code in (400, 401, 403, 422) and alert_of(bad.text), bad.text[-1500:]
    assert secret in bad.text  # the set-up stays on screen to try again
    done = await client.post(
        "/account/2fa/confirm", data={"csrf_token": csrf_of(setup.text), "otp": pyotp.TOTP(secret).now()}
    )
    assert 'id="recovery-codes"' in done.text
    assert "Two-factor authentication is on." in (await client.get("/account")).text


async def test_sign_out_another_device(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    user = await make_user("twodevices")
    laptop = await browser_for(user)
    phone = await browser_for(user)
    page = await laptop.get("/account")
    sessions = re.findall(r'action="/account/sessions/([0-9a-f-]+)/revoke"', page.text)
    assert len(sessions) == 2  # the test's own API sign-in and the phone; this device has no button
    for sid in sessions:
        done = await laptop.post(f"/account/sessions/{sid}/revoke", data={"csrf_token": csrf_of(page.text)})
        assert done.status_code == 303 and "notice=signed_out_device" in done.headers["location"]
    assert (await phone.get("/account")).status_code == 303
    assert (await laptop.get("/account")).status_code == 200
    gone = await laptop.post(f"/account/sessions/{uuid.uuid4()}/revoke", data={"csrf_token": csrf_of(page.text)})
    assert gone.status_code == 404 and alert_of(gone.text)


async def test_password_reset_and_email_verification_from_the_mailed_links(
    app: HaloBuzzApp, client: httpx.AsyncClient
) -> None:
    await sign_up(client, "forgetful")
    mails = Path(app.runtime.settings.data_dir) / "mail"

    async def link(kind: str) -> str:
        """The token of the latest mailed link of ``kind`` (mail is written after the commit)."""
        deadline = time.monotonic() + 20
        while True:
            bodies = [
                email.message_from_bytes(p.read_bytes()).get_payload(decode=True).decode()  # type: ignore[union-attr]
                for p in sorted(mails.glob("*.eml"))
            ]
            found = [m for body in bodies for m in re.findall(rf"/{kind}\?token=(\S+)", body)]
            if found:
                return urllib.parse.unquote(found[-1])
            assert time.monotonic() < deadline, bodies
            await asyncio.sleep(0.05)

    verify = await client.get(f"/verify-email?token={await link('verify-email')}")
    assert verify.status_code == 200
    done = await client.post(
        "/verify-email", data={"csrf_token": csrf_of(verify.text), "token": await link("verify-email")}
    )
    assert done.status_code == 303 and done.headers["location"] == "/account?notice=email_verified"
    assert "confirmed" in (await client.get("/account")).text
    again = await client.post("/verify-email", data={"csrf_token": csrf_of(verify.text), "token": "bogus"})
    assert again.status_code in (400, 404, 422) and alert_of(again.text)

    logout_page = await client.get("/")
    await client.post("/logout", data={"csrf_token": csrf_of(logout_page.text)})
    asked = await submit(client, "/forgot-password", "/forgot-password", email="forgetful@example.com")
    assert asked.status_code == 303 and asked.headers["location"] == "/login?notice=reset_mailed"
    bad_email = await submit(client, "/forgot-password", "/forgot-password", email="not an email")
    assert bad_email.status_code == 422
    token = await link("reset-password")
    form = await client.get(f"/reset-password?token={token}")
    short = await client.post(
        "/reset-password", data={"csrf_token": csrf_of(form.text), "token": token, "new_password": "short"}
    )
    assert short.status_code == 422 and "new_password" in alert_of(short.text)
    reset = await client.post(
        "/reset-password",
        data={"csrf_token": csrf_of(form.text), "token": token, "new_password": "a brand new secret 5"},
    )
    assert reset.status_code == 303 and reset.headers["location"] == "/login?notice=password_reset"
    assert (await sign_in(client, "forgetful", "a brand new secret 5")).status_code == 303


async def test_creator_application_from_the_account(app: HaloBuzzApp, make_user: Any, browser_for: Any) -> None:
    user = await make_user("wouldbecreator")
    web = await browser_for(user)
    studio = await web.get("/studio")
    assert studio.status_code == 200 and 'id="apply-creator"' in studio.text
    applied = await web.post("/account/creator", data={"csrf_token": csrf_of(studio.text)})
    assert applied.status_code == 303 and applied.headers["location"] == "/studio?notice=creator_approved"
    assert 'id="new-stream"' in (await web.get("/studio")).text


async def test_gift_assets_are_served(client: httpx.AsyncClient) -> None:
    gifts = (await client.get(f"{API}/gifts")).json()["items"]
    for gift in gifts:
        described = await client.get(gift["animation_url"])
        assert described.status_code == 200, gift
        svg = await client.get(described.json()["src"])
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")


async def test_home_page_javascript_budget(client: httpx.AsyncClient) -> None:
    """At most 200 KB of JavaScript (gzip) on the home page, all from our own origin, no inline code."""
    home = await client.get("/")
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', home.text)
    assert sources and all(src.startswith("/static/") for src in sources)
    total = 0
    for src in sources:
        script = await client.get(src)
        assert script.status_code == 200, src
        total += len(gzip.compress(script.content))
    assert total <= 200 * 1024, total


async def test_stream_page_scripts_are_served_from_this_origin(client: httpx.AsyncClient, make_user: Any) -> None:
    owner = await make_user(roles=["creator"])
    sid = await _live_stream(client, owner)
    page = await client.get(f"/streams/{sid}")
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page.text)
    assert {"/static/vendor/hls.min.js", "/static/vendor/socket.io.min.js", "/static/js/stream.js"} <= set(sources)
    for src in sources:
        assert (await client.get(src)).status_code == 200, f"{src} missing: run scripts/build-web-assets.sh"
    assert CSRF.search(page.text) is None  # no forms for anonymous viewers


async def test_payment_provider_returns(payments_app: Any, fake_provider: Any, make_user: Any) -> None:
    """eSewa (a signed form POST and its success callback), Khalti (a redirect and the lookup) and
    Stripe (a redirect; credited by the webhook) end on pages that say where the payment stands."""
    from tests.payments.test_payments import esewa_data, stripe_event, stripe_headers

    app = await payments_app()
    async with app.runtime.db.session() as session:
        from halobuzz.economy.service import ensure_default_catalog

        await ensure_default_catalog(session)
    buyer = await make_user("providerbuyer")
    async with client_for(app) as web:
        assert (await sign_in(web, buyer.username, buyer.password)).status_code == 303
        wallet = await web.get("/wallet")
        for provider in ("esewa", "khalti", "stripe", "sandbox"):
            assert f'<option value="{provider}">' in wallet.text
        package = re.search(r'name="package_id" value="([^"]+)"', wallet.text).group(1)  # type: ignore[union-attr]

        async def buy(provider: str, currency: str = "NPR") -> httpx.Response:
            return await web.post(
                "/wallet/buy",
                data={
                    "csrf_token": csrf_of(wallet.text),
                    "package_id": package,
                    "provider": provider,
                    "currency": currency,
                },
            )

        esewa = await buy("esewa")
        assert esewa.status_code == 200
        action = re.search(r'<form method="post" action="(https?://[^"]+)"', esewa.text).group(1)  # type: ignore[union-attr]
        assert action.endswith("/api/epay/main/v2/form")
        assert f"form-action 'self' {action.rsplit('/api/', 1)[0]}" in esewa.headers["content-security-policy"]
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', esewa.text))
        assert fields["success_url"].endswith("/wallet/return/esewa")
        callback = {
            "transaction_code": "000AWEO",
            "status": "COMPLETE",
            "total_amount": "10.0",
            "transaction_uuid": fields["transaction_uuid"],
            "product_code": "EPAYTEST",
        }
        back = await web.get("/wallet/return/esewa", params={"data": esewa_data(callback)})
        assert back.status_code == 200 and 'data-outcome="succeeded"' in back.text
        forged = await web.get("/wallet/return/esewa", params={"data": esewa_data(callback, "wrong")})
        assert forged.status_code == 400 and 'data-outcome="failed"' in forged.text and alert_of(forged.text)
        failed = await web.get(
            "/wallet/return/esewa", params={"payment_intent": fields["transaction_uuid"], "status": "failed"}
        )
        assert 'data-outcome="failed"' in failed.text

        khalti = await buy("khalti")
        assert khalti.status_code == 200 and 'id="continue" href="https://test-pay.khalti.test/?pidx=' in khalti.text
        (pidx,) = fake_provider.khalti
        pending = await web.get("/wallet/return/khalti", params={"pidx": pidx})
        assert 'data-outcome="pending"' in pending.text
        fake_provider.khalti[pidx]["status"] = "Completed"
        assert 'data-outcome="succeeded"' in (await web.get("/wallet/return/khalti", params={"pidx": pidx})).text

        stripe = await buy("stripe", "USD")
        assert stripe.status_code == 200 and 'id="continue"' in stripe.text
        (session,) = fake_provider.sessions.values()
        intent_id = session["client_reference_id"]
        started = next(q for q in fake_provider.requests if q["path"] == "/v1/checkout/sessions")
        form = dict(urllib.parse.parse_qsl(started["body"].decode()))
        assert form["success_url"].endswith(f"/wallet/return/stripe?payment_intent={intent_id}")
        waiting = await web.get("/wallet/return/stripe", params={"payment_intent": intent_id})
        assert 'data-outcome="pending"' in waiting.text
        canceled = await web.get("/wallet/return/stripe", params={"payment_intent": intent_id, "status": "canceled"})
        assert 'data-outcome="canceled"' in canceled.text
        paid = stripe_event(fake_provider.pay_stripe(session["id"]), "evt_web")
        hook = await web.post(f"{API}/payments/webhooks/stripe", content=paid, headers=stripe_headers(paid))
        assert hook.status_code == 200, hook.text
        assert (
            'data-outcome="succeeded"'
            in (await web.get("/wallet/return/stripe", params={"payment_intent": intent_id})).text
        )
        assert (await web.get("/wallet/return/stripe", params={"payment_intent": "x"})).status_code == 404
        balance = re.search(r'id="balance">(\d+)<', (await web.get("/wallet")).text).group(1)  # type: ignore[union-attr]
        assert balance == "1500"
